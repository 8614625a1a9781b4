"""nt-ode's hook implementations: the ODE solvers it registers."""

from ntcore.registry import OdeSolverSpec, hookimpl

from nt_ode.solvers import SOLVERS


@hookimpl
def register_ode_solvers():
  return [OdeSolverSpec(name, solver, solver.doc)
          for name, solver in SOLVERS.items()]
