"""nt-ode's hook implementations: the ODE solvers it registers.

The plugin's modules are imported inside the hooks: loading the plugin (as
`ntcore --help` does) imports no jax.
"""

from ntcore.registry import OdeSolverSpec, hookimpl


@hookimpl
def register_ode_solvers():
  # pylint: disable=import-outside-toplevel
  from nt_ode.solvers import SOLVERS
  return [OdeSolverSpec(name, solver, solver.doc)
          for name, solver in SOLVERS.items()]
