"""Training dynamics and inference of infinitely wide networks.

Closed forms for MSE: `gradient_descent_mse` (function-space gradient flow
for given kernels), `gradient_descent_mse_ensemble` (mean and covariance of
the infinite ensemble, from a `kernel_fn`), `gp_inference` (NNGP / NTK /
NTK-GP posteriors) and `max_learning_rate`. Any other loss: `gradient_descent`
(with optional momentum) integrates the function-space ODE with an
`OdeSolver` that a plugin registers (`nt-ode`). `ntcore.predict` re-exports
them under Neural Tangents' names. Beyond NT: `log_marginal_likelihood` of
the targets under the NNGP or NTK-GP, and `fit_marginal_likelihood`.
"""

from ntcore.dynamics.ensemble import gradient_descent_mse_ensemble
from ntcore.dynamics.inference import Gaussian, gp_inference
from ntcore.dynamics.learning_rate import max_learning_rate
from ntcore.dynamics.marginal import (MarginalFit, fit_marginal_likelihood,
                                      kernel_log_marginal_likelihood,
                                      log_marginal_likelihood)
from ntcore.dynamics.mse import gradient_descent_mse
from ntcore.dynamics.ode import ODEState, OdeSolver, gradient_descent
from ntcore.dynamics.cg import (AUTO_CG_SIZE, CG, CGConvergenceError,
                                CGRecord)
from ntcore.dynamics.operator import KernelOperator

__all__ = [
    "Gaussian", "ODEState", "OdeSolver", "gp_inference", "gradient_descent",
    "gradient_descent_mse", "gradient_descent_mse_ensemble",
    "max_learning_rate",
    "MarginalFit", "fit_marginal_likelihood",
    "kernel_log_marginal_likelihood", "log_marginal_likelihood",
    "AUTO_CG_SIZE", "CG", "CGConvergenceError", "CGRecord", "KernelOperator",
]
