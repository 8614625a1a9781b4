"""nt-montecarlo's hook implementations: the estimators it registers.

The plugin's modules are imported inside the hooks: loading the plugin (as
`ntcore --help` does) imports no jax.
"""

from ntcore.registry import EstimatorSpec, hookimpl


@hookimpl
def register_estimators():
  # pylint: disable=import-outside-toplevel
  from nt_montecarlo import empirical, implementation, monte_carlo, ntk
  return [
      EstimatorSpec("monte_carlo_kernel_fn", monte_carlo.monte_carlo_kernel_fn),
      EstimatorSpec("empirical_kernel_fn", empirical.empirical_kernel_fn),
      EstimatorSpec("empirical_ntk_fn", ntk.empirical_ntk_fn),
      EstimatorSpec("empirical_nngp_fn", empirical.empirical_nngp_fn),
      EstimatorSpec("empirical_ntk_vp_fn", ntk.empirical_ntk_vp_fn),
      EstimatorSpec("NtkImplementation", implementation.NtkImplementation),
  ]
