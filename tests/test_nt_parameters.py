"""`init_fn` draws the parameters NT 0.6.5 drew for the same key, and Monte
Carlo kernels average the samples NT averaged.

The reference (`data/nt_parameters.npz`) was written by NT 0.6.5 itself
(`data/make_nt_parameters.py`, jax 0.4.23). JAX's newer default random
scheme gives other values; ntcore's `init_fn`s draw under the older one
(`ntcore._prng`).
"""

import importlib.util
import pathlib

import jax
import numpy as np
import pytest

import ntcore
from ntcore import stax

DATA = pathlib.Path(__file__).parent / "data"
REFERENCE = DATA / "nt_parameters.npz"


def _networks_module():
  spec = importlib.util.spec_from_file_location(
      "make_nt_parameters", DATA / "make_nt_parameters.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def x64():
  before = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", before)


def test_parameters_are_nt_s_for_the_same_key(x64):
  del x64
  want = np.load(REFERENCE)
  got = _networks_module().parameters(stax)
  assert sorted(got) == sorted(f for f in want.files if not f.startswith("mc_"))
  for name in got:
    assert got[name].shape == want[name].shape, name
    np.testing.assert_allclose(got[name], want[name], rtol=1e-14, atol=1e-15,
                               err_msg=name)


def test_monte_carlo_estimates_are_nt_s_for_the_same_key(x64):
  del x64
  want = np.load(REFERENCE)
  got = _networks_module().monte_carlo(ntcore)
  for name, value in got.items():
    np.testing.assert_allclose(value, want[name], rtol=1e-13, atol=1e-15,
                               err_msg=name)


def test_random_numbers_outside_init_follow_jax(x64):
  del x64
  # Only `init_fn` draws under the older scheme; the caller's stream is
  # JAX's own, whatever ntcore did before.
  key = jax.random.PRNGKey(3)
  before = np.asarray(jax.random.normal(key, (4,)))
  stax.Dense(2)[0](key, (1, 3))
  assert np.array_equal(np.asarray(jax.random.normal(key, (4,))), before)
  assert jax.config.jax_threefry_partitionable  # JAX's default, untouched
