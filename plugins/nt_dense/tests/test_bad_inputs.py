"""Erf's kernel at extreme input scales: finite and accurate in float32.

The references are the textbook closed forms evaluated in float64 with
NumPy (`arcsin`, no rearrangement), and the float64 kernels themselves.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from ntcore import stax

RNG = np.random.default_rng(3)
X1 = RNG.normal(size=(4, 6))
X2 = RNG.normal(size=(3, 6))


def erf_reference(x1, x2, a=1., b=1., c=0.):
  """Williams' arcsine NNGP and the NTK of Dense(1) -> Erf(a, b, c) -> (none).

  The input kernel of the Dense layer (W_std=1, no bias) is `x1 x2^T / d`
  and its NTK equals its NNGP; Erf multiplies the NTK by
  `a^2 b^2 (4 / pi) / sqrt(det)`.
  """
  d = x1.shape[1]
  q1 = b ** 2 * np.sum(x1 ** 2, 1)[:, None] / d
  q2 = b ** 2 * np.sum(x2 ** 2, 1)[None, :] / d
  cov = b ** 2 * x1 @ x2.T / d
  s = (1 + 2 * q1) * (1 + 2 * q2)
  nngp = a ** 2 * (2 / np.pi) * np.arcsin(2 * cov / np.sqrt(s)) + c ** 2
  factor = a ** 2 * b ** 2 * (4 / np.pi) / np.sqrt(s - 4 * cov ** 2)
  return nngp, factor * cov / b ** 2


def kernels(x1, x2, dtype, **erf):
  kernel_fn = stax.serial(stax.Dense(1), stax.Erf(**erf))[2]
  k = kernel_fn(jnp.asarray(x1, dtype),
                None if x2 is None else jnp.asarray(x2, dtype),
                ("nngp", "ntk"))
  return np.asarray(k.nngp, np.float64), np.asarray(k.ntk, np.float64)


@pytest.mark.parametrize("erf", [{}, dict(a=1.3, b=0.4, c=0.2)])
def test_erf_matches_the_arcsine_closed_form_in_float64(erf):
  want = erf_reference(X1 * 3, X2 * 3, **erf)
  got = kernels(X1 * 3, X2 * 3, jnp.float64, **erf)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-13)


@pytest.mark.parametrize("scale", [1e3, 1e6, 1e12, 1e18])
def test_float32_erf_kernels_stay_accurate_for_large_inputs(scale):
  # Before the normalised form: 1e-4 off at 1e6, NaN NTK from 1e12 on
  # (q1 q2 - c^2 overflowed float32).
  for x2 in (X2 * scale, None):
    ref = kernels(X1 * scale, x2, jnp.float64)
    got = kernels(X1 * scale, x2, jnp.float32)
    for g, r in zip(got, ref):
      assert np.isfinite(g).all()
      # float32 round-off (6e-8) amplified by a few operations.
      np.testing.assert_allclose(g, r, rtol=2e-5)


def test_float32_erf_diagonal_is_exact_at_large_inputs():
  # The same example twice: correlation exactly 1, NTK factor
  # (4 / pi) / sqrt(1 + 4 q), which the unnormalised form lost to
  # cancellation of q^2 terms.
  x = X1 * 1e6
  nngp, ntk = kernels(x, None, jnp.float32)
  q = np.sum(x ** 2, 1) / x.shape[1]
  np.testing.assert_allclose(np.diag(nngp),
                             (2 / np.pi) * np.arcsin(2 * q / (1 + 2 * q)),
                             rtol=1e-6)
  np.testing.assert_allclose(np.diag(ntk),
                             q * (4 / np.pi) / np.sqrt(1 + 4 * q), rtol=1e-5)


def test_erf_of_zero_inputs_is_finite():
  nngp, ntk = kernels(np.zeros((2, 3)), None, jnp.float32)
  assert np.isfinite(nngp).all() and np.isfinite(ntk).all()
  np.testing.assert_array_equal(nngp, 0.)
