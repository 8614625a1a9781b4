"""nt-montecarlo: finite-width kernels for ntcore.

Empirical NNGP/NTK of any `f(params, x)` and their Monte Carlo averages over
random initializations, with Neural Tangents 0.6.5's names and arguments.
Through the registry they are `ntcore.empirical_ntk_fn`,
`ntcore.monte_carlo_kernel_fn`, ...
"""

from nt_montecarlo.empirical import empirical_kernel_fn, empirical_nngp_fn
from nt_montecarlo.errors import EstimatorArgumentError
from nt_montecarlo.implementation import NtkImplementation
from nt_montecarlo.monte_carlo import monte_carlo_kernel_fn
from nt_montecarlo.ntk import empirical_ntk_fn, empirical_ntk_vp_fn

__all__ = [
    "EstimatorArgumentError", "NtkImplementation", "empirical_kernel_fn",
    "empirical_nngp_fn", "empirical_ntk_fn", "empirical_ntk_vp_fn",
    "monte_carlo_kernel_fn",
]
