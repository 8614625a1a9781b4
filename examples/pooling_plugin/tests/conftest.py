"""Test setup for nt-blockpool: float64, strict rank promotion, 2 CPU devices."""

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

from ntcore import registry  # pylint: disable=wrong-import-position

import nt_blockpool.plugin  # pylint: disable=wrong-import-position


@pytest.fixture
def plugin_manager():
  """A fresh plugin manager holding nt-blockpool and nothing else."""
  pm = registry.new_manager()
  registry.register(pm, nt_blockpool.plugin, "nt-blockpool")
  return pm


@pytest.fixture
def fresh_global_registry(monkeypatch):
  """The global registry rebuilt from every installed entry point, restored after."""
  monkeypatch.delenv(registry.LOAD_ENV, raising=False)
  old = registry.use_registry(None)
  try:
    yield registry.get_registry()
  finally:
    registry.use_registry(old)
