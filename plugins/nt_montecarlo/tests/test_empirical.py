"""Empirical NNGP/NTK: implementations agree, closed forms, layout, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax, random

from ntcore import ShapeError
from nt_montecarlo import (EstimatorArgumentError, NtkImplementation,
                           empirical_kernel_fn, empirical_nngp_fn,
                           empirical_ntk_fn, empirical_ntk_vp_fn)

JC = NtkImplementation.JACOBIAN_CONTRACTION
NVP = NtkImplementation.NTK_VECTOR_PRODUCTS

# float64 round-off: every kernel entry here is a sum of at most a few
# thousand products of O(1) numbers, so the two implementations (different
# summation orders) differ by ~1e3 * eps = 2e-13 relative at worst.
RTOL = 1e-12


def assert_close(actual, expected, rtol=RTOL):
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape
  scale = max(np.max(np.abs(expected)), 1e-300)
  np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def _normal(seed, shape):
  # Host-side numbers: an eager `random.normal` would compile per shape.
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


# A two-layer FC network over a nested pytree of parameters.
FC_PARAMS = {"hidden": (_normal(0, (4, 8)), _normal(1, (1, 8))),
             "out": _normal(2, (8, 3))}


def fc(params, x):
  w1, b1 = params["hidden"]
  h = jnp.tanh(x @ w1 / 2. + b1)
  return h @ params["out"] / jnp.sqrt(8.)


# A small CNN (NHWC), written directly with lax.conv_general_dilated.
CONV_PARAMS = (_normal(3, (3, 3, 2, 4)), _normal(4, (3, 3, 4, 3)))


def conv(params, x):
  dims = ("NHWC", "HWIO", "NHWC")
  h = jnp.tanh(lax.conv_general_dilated(x, params[0], (1, 1), "SAME",
                                        dimension_numbers=dims) / 4.)
  return lax.conv_general_dilated(h, params[1], (1, 1), "SAME",
                                  dimension_numbers=dims) / 6.


X1, X2 = _normal(5, (3, 4)), _normal(6, (2, 4))
IMG1, IMG2 = _normal(7, (2, 4, 4, 2)), _normal(8, (1, 4, 4, 2))


@pytest.mark.parametrize("trace_axes, diagonal_axes, same, shape", [
    ((-1,), (), False, (3, 2)),
    ((), (), False, (3, 2, 3, 3)),
    ((), (0,), True, (3, 3, 3)),
    ((-1,), (0,), True, (3,)),
    ((0,), (), True, (3, 3)),
])
def test_fc_jacobian_contraction_equals_ntk_vector_products(
    trace_axes, diagonal_axes, same, shape):
  x2 = None if same else X2
  jc = empirical_ntk_fn(fc, trace_axes, diagonal_axes, None, JC)(
      X1, x2, FC_PARAMS)
  nvp = empirical_ntk_fn(fc, trace_axes, diagonal_axes, 0, NVP)(
      X1, x2, FC_PARAMS)
  assert jc.shape == shape
  assert_close(nvp, jc)


@pytest.mark.parametrize("trace_axes, diagonal_axes, shape", [
    ((-1,), (), (2, 1, 4, 4, 4, 4)),
    ((-1,), (1, 2), (2, 1, 4, 4)),
    ((1, 2, 3), (), (2, 1)),
    ((), (1,), (2, 1, 4, 4, 4, 3, 3)),
])
def test_conv_jacobian_contraction_equals_ntk_vector_products(
    trace_axes, diagonal_axes, shape):
  jc = empirical_ntk_fn(conv, trace_axes, diagonal_axes, 0, JC)(
      IMG1, IMG2, CONV_PARAMS)
  nvp = empirical_ntk_fn(conv, trace_axes, diagonal_axes, None, NVP)(
      IMG1, IMG2, CONV_PARAMS)
  assert jc.shape == shape
  assert_close(nvp, jc)


def test_vmap_axes_do_not_change_the_kernel():
  plain = empirical_ntk_fn(fc, trace_axes=())(X1, X2, FC_PARAMS)
  vmapped = empirical_ntk_fn(fc, trace_axes=(), vmap_axes=(0, 0, {}))(
      X1, X2, FC_PARAMS)
  assert_close(vmapped, plain)


# f(x) = x W1 W2, with x: (N, d), W1: (d, h), W2: (h, k). Hand derivation:
#   df_a(x)/dW2[j, b] = delta_ab (x W1)_j,  df_a(x)/dW1[i, j] = x_i W2[j, a],
# so  Theta_ab(x, y) = delta_ab <x W1, y W1> + <x, y> (W2^T W2)_ab,
# and NNGP_ab(x, y) = f_a(x) f_b(y).
W1, W2 = _normal(9, (4, 6)), _normal(10, (6, 3))


def linear(params, x):
  return x @ params[0] @ params[1]


@pytest.mark.parametrize("implementation", [JC, NVP])
def test_linear_network_ntk_matches_closed_form(implementation):
  h1, h2 = X1 @ W1, X2 @ W1
  closed = (jnp.einsum("nj,mj,ab->nmab", h1, h2, jnp.eye(3))
            + jnp.einsum("nm,ab->nmab", X1 @ X2.T, W2.T @ W2))
  kernel_fn = empirical_kernel_fn(linear, trace_axes=(),
                                  implementation=implementation)
  k = kernel_fn(X1, X2, None, (W1, W2))
  assert_close(k.ntk, closed)
  assert_close(k.nngp, jnp.einsum("na,mb->nmab", linear((W1, W2), X1),
                                  linear((W1, W2), X2)))
  # Tracing the logit axis averages its diagonal: (1/k) tr_ab Theta_ab.
  traced = empirical_ntk_fn(linear, implementation=implementation)(
      X1, X2, (W1, W2))
  assert_close(traced, jnp.einsum("nmaa->nm", closed) / 3)


def test_nngp_and_ntk_of_x_with_itself_are_symmetric_psd():
  x = _normal(11, (6, 4))
  k = empirical_kernel_fn(fc)(x, None, ("nngp", "ntk"), FC_PARAMS)
  for name, mat in k._asdict().items():
    mat = np.asarray(mat)
    assert mat.shape == (6, 6)
    np.testing.assert_allclose(mat, mat.T, rtol=0, atol=1e-14 * np.abs(
        mat).max(), err_msg=name)
    # A Gram matrix: eigenvalues >= 0 up to round-off of its largest one.
    assert np.linalg.eigvalsh(mat).min() >= -1e-12 * np.abs(mat).max(), name
  # x2=None and x2=x (same values) are the same kernel.
  same = empirical_kernel_fn(fc)(x, x, ("nngp", "ntk"), FC_PARAMS)
  assert_close(same.nngp, k.nngp)
  assert_close(same.ntk, k.ntk)


def test_ntk_vp_fn_is_full_ntk_times_cotangents():
  cotangents = _normal(12, (2, 3))
  ntk = empirical_ntk_fn(fc, trace_axes=())(X1, X2, FC_PARAMS)
  vp = empirical_ntk_vp_fn(fc, X1, X2, FC_PARAMS)(cotangents)
  assert vp.shape == (3, 3)
  assert_close(vp, jnp.einsum("nmab,mb->na", ntk, cotangents))


def test_get_and_pytree_outputs_follow_nt():
  def two_heads(params, x):
    return fc(params, x), jnp.sin(x)

  kernel_fn = empirical_kernel_fn(two_heads, trace_axes=())
  both = kernel_fn(X1, X2, None, FC_PARAMS)
  assert isinstance(both, tuple) and len(both) == 2
  assert type(both[0]).__name__ == "EmpiricalKernel"
  assert both[0]._fields == ("nngp", "ntk")
  assert both[0].ntk.shape == (3, 2, 3, 3)
  assert both[1].nngp.shape == (3, 2, 4, 4)
  # sin(x) has no parameters: its NTK is exactly zero.
  assert not np.any(np.asarray(both[1].ntk))
  ordered = kernel_fn(X1, X2, ("ntk", "nngp"), FC_PARAMS)
  assert ordered[0]._fields == ("ntk", "nngp")
  assert_close(ordered[0].ntk, both[0].ntk)
  single = kernel_fn(X1, X2, "NNGP", FC_PARAMS)
  assert_close(single[1], both[1].nngp)


def test_rng_and_pair_keywords_split_like_nt():
  def noisy(params, x, rng, scale):
    # A different output for every key, without compiling a PRNG.
    noise = (rng[0] % 89 + rng[1] % 97).astype(x.dtype)
    return fc(params, x) * noise * scale

  nngp_fn = empirical_nngp_fn(noisy)
  key = random.PRNGKey(13)
  # x2 equal to x1: the same key for both, as with x2=None.
  assert_close(nngp_fn(X1, X1 + 0., FC_PARAMS, rng=key, scale=2.),
               nngp_fn(X1, None, FC_PARAMS, rng=key, scale=2.))
  # Different inputs: x2 gets fold_in(key, 1); a pair is split.
  out1 = noisy(FC_PARAMS, X1, key, 2.)
  out2 = noisy(FC_PARAMS, X2, random.fold_in(key, 1), 3.)
  assert_close(nngp_fn(X1, X2, FC_PARAMS, rng=key, scale=(2., 3.)),
               out1 @ out2.T / 3)


def test_int_implementations_agree():
  expected = empirical_ntk_fn(fc, implementation=JC)(X1, X2, FC_PARAMS)
  for implementation in (0, 2, 3):  # AUTO, NVP, STRUCTURED_DERIVATIVES
    # (test_structured.py and test_auto.py cover them on more networks)
    got = empirical_ntk_fn(fc, implementation=implementation)(
        X1, X2, FC_PARAMS)
    assert_close(got, expected)


def test_bad_arguments_say_what_to_pass():
  with pytest.raises(EstimatorArgumentError, match="NtkImplementation"):
    empirical_ntk_fn(fc, implementation=4)
  with pytest.raises(EstimatorArgumentError, match="'nngp', 'ntk'"):
    empirical_kernel_fn(fc)(X1, X2, "cov1", FC_PARAMS)
  with pytest.raises(ShapeError, match="trace_axes"):
    empirical_nngp_fn(fc, trace_axes=(2,))(X1, X2, FC_PARAMS)
  with pytest.raises(ShapeError, match="same size"):
    empirical_nngp_fn(fc, trace_axes=(0,))(X1, X2, FC_PARAMS)
