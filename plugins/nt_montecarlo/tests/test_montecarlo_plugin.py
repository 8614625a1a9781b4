"""nt-montecarlo registers its estimators and `ntcore.<name>` finds them."""

import ntcore as nt
import nt_montecarlo
from nt_montecarlo import plugin

NAMES = ("monte_carlo_kernel_fn", "empirical_kernel_fn", "empirical_ntk_fn",
         "empirical_nngp_fn", "empirical_ntk_vp_fn", "NtkImplementation")


def test_hook_returns_every_estimator_once():
  specs = plugin.register_estimators()
  assert sorted(s.name for s in specs) == sorted(NAMES)
  for spec in specs:
    assert spec.fn is getattr(nt_montecarlo, spec.name)
    assert spec.doc, f"{spec.name} has no docstring summary line"


def test_fresh_registry_attributes_specs_to_the_plugin(registry):
  for name in NAMES:
    spec = registry.estimators.get(name)
    assert spec.plugin == "nt-montecarlo"
    assert spec.fn is getattr(nt_montecarlo, name)


def test_installed_entry_point_resolves_through_ntcore():
  # Needs `pip install -e plugins/nt_montecarlo` (the entry point).
  assert nt.monte_carlo_kernel_fn is nt_montecarlo.monte_carlo_kernel_fn
  assert nt.NtkImplementation.NTK_VECTOR_PRODUCTS == 2
