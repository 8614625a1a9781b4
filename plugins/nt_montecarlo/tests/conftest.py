"""Test setup for nt-montecarlo: float64, strict rank promotion, 2 CPU devices."""

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import pytest  # pylint: disable=wrong-import-position
from ntcore.registry import Registry, new_manager, register  # pylint: disable=wrong-import-position

import nt_montecarlo.plugin  # pylint: disable=wrong-import-position


@pytest.fixture
def registry():
  """A fresh registry holding nt-montecarlo alone (the global one untouched)."""
  pm = new_manager()
  register(pm, nt_montecarlo.plugin, "nt-montecarlo")
  return Registry(pm)
