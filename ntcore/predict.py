"""NT-compatible `predict` namespace: `nt.predict.gradient_descent_mse`, ...

The functions live in `ntcore.dynamics`; this module only re-exports them
under Neural Tangents 0.6.5's names, plus the marginal likelihood
(`log_marginal_likelihood`, `fit_marginal_likelihood`), which NT lacks.
"""

from ntcore.dynamics import (Gaussian, ODEState, OdeSolver, gp_inference,
                             gradient_descent, gradient_descent_mse,
                             gradient_descent_mse_ensemble, max_learning_rate)
from ntcore.dynamics import (MarginalFit, fit_marginal_likelihood,
                             kernel_log_marginal_likelihood,
                             log_marginal_likelihood)
from ntcore.dynamics import (AUTO_CG_SIZE, CG, CGConvergenceError,
                             CGRecord, KernelOperator)

__all__ = [
    "Gaussian", "ODEState", "OdeSolver", "gp_inference", "gradient_descent",
    "gradient_descent_mse", "gradient_descent_mse_ensemble",
    "max_learning_rate",
    "MarginalFit", "fit_marginal_likelihood",
    "kernel_log_marginal_likelihood", "log_marginal_likelihood",
    "AUTO_CG_SIZE", "CG", "CGConvergenceError", "CGRecord", "KernelOperator",
]
