"""nt-montecarlo: finite-width kernels for ntcore.

Empirical NNGP/NTK of any `f(params, x)` and their Monte Carlo averages over
random initializations, with Neural Tangents 0.6.5's names and arguments.
Through the registry they are `ntcore.empirical_ntk_fn`,
`ntcore.monte_carlo_kernel_fn`, ...
"""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin (as `ntcore --help` does)
# must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "EstimatorArgumentError": "nt_montecarlo.errors",
    "NtkImplementation": "nt_montecarlo.implementation",
    "empirical_kernel_fn": "nt_montecarlo.empirical",
    "empirical_nngp_fn": "nt_montecarlo.empirical",
    "empirical_ntk_fn": "nt_montecarlo.ntk",
    "empirical_ntk_vp_fn": "nt_montecarlo.ntk",
    "monte_carlo_kernel_fn": "nt_montecarlo.monte_carlo",
})
