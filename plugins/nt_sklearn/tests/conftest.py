"""Test setup for nt-sklearn: float64, strict rank promotion, 2 CPU devices,
and a global registry holding nt-dense (the default network's layers) and
nt-sklearn."""

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# pylint: disable=wrong-import-position
import pytest
from nt_dense import plugin as dense_plugin
from ntcore import registry

from nt_sklearn import plugin


@pytest.fixture(scope="module", autouse=True)
def sklearn_registry():
  """The global registry, for one test module, is a fresh manager holding
  nt-dense and nt-sklearn (under their entry-point names); the previous
  registry comes back after."""
  with registry.registry_holding(("nt-dense", dense_plugin),
                                 ("nt-sklearn", plugin)) as reg:
    yield reg
