"""nt-ode: diffrax ODE solvers for ntcore's `predict.gradient_descent`."""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin (as `ntcore --help` does)
# must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DiffraxSolver": "nt_ode.solvers",
    "MAX_STEPS": "nt_ode.solvers",
    "SOLVERS": "nt_ode.solvers",
})
