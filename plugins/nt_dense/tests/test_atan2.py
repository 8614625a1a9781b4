"""The float32 angle of the arc-cosine kernels (`nt_dense._atan2`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nt_dense._atan2 import atan2_upper


def _inputs(n=200_000, seed=0):
  rs = np.random.RandomState(seed)
  y = np.abs(rs.randn(n)) * 10.0 ** rs.uniform(-6, 3, n)
  x = rs.randn(n) * 10.0 ** rs.uniform(-6, 3, n)
  y[:100] = 0.0            # theta = 0 or pi
  x[100:200] = 0.0         # theta = pi / 2
  y[200:300] = x[200:300] = np.abs(x[200:300])   # theta = pi / 4
  return y.astype(np.float32), x.astype(np.float32)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_float32_within_3_ulp_of_the_float64_angle(compiled):
  # Compiled, XLA fuses the whole angle and may contract products and sums.
  y, x = _inputs()
  ref = np.arctan2(y.astype(np.float64), x.astype(np.float64))
  fn = jax.jit(atan2_upper) if compiled else atan2_upper
  got = np.asarray(fn(jnp.asarray(y), jnp.asarray(x)))
  assert got.dtype == np.float32
  ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
  err = np.abs(got.astype(np.float64) - ref) / ulp
  assert err.max() <= 3.0, err.max()
  # And no worse than XLA's own arctan2 by more than 2.5 ulp anywhere.
  xla = np.asarray(jnp.arctan2(jnp.asarray(y), jnp.asarray(x)), np.float64)
  assert (err - np.abs(xla - ref) / ulp).max() <= 2.5


@pytest.mark.parametrize("y, x, theta", [
    (0.0, 1.0, 0.0), (0.0, 3e-30, 0.0), (0.0, -2.0, np.pi),
    (1.0, 0.0, np.pi / 2)])
def test_float32_ends_are_exact(y, x, theta):
  got = atan2_upper(jnp.float32(y), jnp.float32(x))
  assert got == np.float32(theta)


@pytest.mark.parametrize("x, theta", [(5.0, np.pi / 4), (-5.0, 3 * np.pi / 4)])
def test_float32_diagonals_within_one_ulp(x, theta):
  got = atan2_upper(jnp.float32(5.0), jnp.float32(x))
  assert abs(float(got) - theta) <= np.spacing(np.float32(theta))


def test_float64_is_xlas_arctan2():
  y, x = _inputs(seed=1)
  y, x = jnp.asarray(y, jnp.float64), jnp.asarray(x, jnp.float64)
  np.testing.assert_array_equal(atan2_upper(y, x), jnp.arctan2(y, x))
