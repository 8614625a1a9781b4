"""nt-ode: diffrax ODE solvers for ntcore's `predict.gradient_descent`."""

from nt_ode.solvers import MAX_STEPS, SOLVERS, DiffraxSolver

__all__ = ["DiffraxSolver", "MAX_STEPS", "SOLVERS"]
