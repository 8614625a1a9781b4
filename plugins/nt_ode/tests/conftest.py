"""Test setup for nt-ode: float64, strict rank promotion, 2 CPU devices, and
a global registry holding just this plugin."""

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# pylint: disable=wrong-import-position
import pytest

from ntcore import registry

from nt_ode import plugin


@pytest.fixture(scope="module", autouse=True)
def ode_registry():
  """The global registry, for one test module, is a fresh manager holding
  only nt-ode (the name its entry point has), so `solver="dopri5"` resolves
  here whatever else is installed; the previous registry comes back after."""
  with registry.registry_holding(("nt-ode", plugin)) as reg:
    yield reg
