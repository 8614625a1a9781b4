"""NT-compatible `predict` namespace: `nt.predict.gradient_descent_mse`, ...

The functions live in `ntcore.dynamics`; this module only re-exports them
under Neural Tangents 0.6.5's names.
"""

from ntcore.dynamics import (Gaussian, ODEState, OdeSolver, gp_inference,
                             gradient_descent, gradient_descent_mse,
                             gradient_descent_mse_ensemble, max_learning_rate)

__all__ = [
    "Gaussian", "ODEState", "OdeSolver", "gp_inference", "gradient_descent",
    "gradient_descent_mse", "gradient_descent_mse_ensemble",
    "max_learning_rate",
]
