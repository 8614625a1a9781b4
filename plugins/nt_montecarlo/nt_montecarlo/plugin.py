"""nt-montecarlo's hook implementations: the estimators it registers."""

from ntcore.registry import EstimatorSpec, hookimpl

from nt_montecarlo import empirical, implementation, monte_carlo, ntk


@hookimpl
def register_estimators():
  return [
      EstimatorSpec("monte_carlo_kernel_fn", monte_carlo.monte_carlo_kernel_fn),
      EstimatorSpec("empirical_kernel_fn", empirical.empirical_kernel_fn),
      EstimatorSpec("empirical_ntk_fn", ntk.empirical_ntk_fn),
      EstimatorSpec("empirical_nngp_fn", empirical.empirical_nngp_fn),
      EstimatorSpec("empirical_ntk_vp_fn", ntk.empirical_ntk_vp_fn),
      EstimatorSpec("NtkImplementation", implementation.NtkImplementation),
  ]
