"""`ImageResize`: closed forms ('nearest' is indexing, 'linear' is `W K W^T`
with `W` read off the finite resize), the conformance suite, masks, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntcore.testing
from ntcore import KernelRequirementError, stax

from _exact import Natural, natural

rng = np.random.default_rng(2)
X1 = rng.normal(size=(3, 4, 5, 2))  # NHWC
X2 = rng.normal(size=(2, 4, 5, 2))


def trunk():
  # Conv: full kernels arrive stored reversed (NT's layout). Erf (smooth
  # dual) so that networks compiled differently agree to round-off; see
  # test_index.py.
  return [stax.Conv(3, (2, 2), padding="SAME", W_std=1.3, b_std=0.2),
          stax.Erf()]


@functools.lru_cache
def base_kernel(x2_is_none=False, diag=False):
  """The trunk's kernel in activation order, computed once per case."""
  k = stax.serial(*trunk())[2](X1, None if x2_is_none else X2,
                               diagonal_spatial=diag)
  return Natural(k)


def resize_matrix(n_in, n_out, method, antialias=True):
  """`W` with `resize(x)[o] = sum_i W[o, i] x[i]`: the identity, resized."""
  return np.asarray(jax.image.resize(jnp.eye(n_in), (n_out, n_in), method,
                                     antialias=antialias))


def nearest(n_in, n_out):
  return np.floor((np.arange(n_out) + 0.5) * n_in / n_out).astype(int)


@pytest.mark.parametrize("diag", [False, True])
def test_nearest_downsampling_is_indexing(diag):
  # 4x5 -> 2x2 nearest picks rows (1, 3) and columns (1, 3): the kernel is
  # the Index layer's, exactly.
  resized = stax.serial(*trunk(), stax.ImageResize((-1, 2, 2, -1), "nearest"))
  indexed = stax.serial(*trunk(), stax.Index(stax.Slice[:, 1::2, 1:4:2]))
  fields = ("nngp", "ntk", "cov1", "cov2")
  got = resized[2](X1, X2, fields, diagonal_spatial=diag)
  want = indexed[2](X1, X2, fields, diagonal_spatial=diag)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


def test_nearest_upsampling_repeats_entries():
  got = stax.serial(*trunk(), stax.ImageResize((-1, 6, 5, -1), "nearest"))[2](
      X1, X2)
  rows = nearest(4, 6)
  want = base_kernel().nngp[:, :, rows][:, :, :, rows]
  np.testing.assert_allclose(natural(got, "nngp"), want, rtol=1e-13,
                             atol=1e-15)


@pytest.mark.parametrize("shape, antialias", [
    ((-1, 2, 3, -1), True),   # downsampling, triangle filter
    ((-1, 2, 3, -1), False),
    ((-1, 7, 8, -1), True),   # upsampling
])
def test_linear_is_w_k_w_transpose(shape, antialias):
  # Linear resizing is y = W x on each spatial axis, with W the resize of
  # the identity matrix; the covariance is W K W^T on both members of each
  # axis pair.
  layer = stax.ImageResize(shape, "linear", antialias=antialias)
  got = Natural(stax.serial(*trunk(), layer)[2](X1, X2))
  wh = resize_matrix(4, shape[1], "linear", antialias)
  ww = resize_matrix(5, shape[2], "linear", antialias)
  want = base_kernel()
  for g, w in ((got.nngp, want.nngp), (got.ntk, want.ntk)):
    expect = np.einsum("ah,nmhHwW,AH,bw,BW->nmaAbB", wh, w, wh, ww, ww)
    np.testing.assert_allclose(g, expect, rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(
      got.cov1, np.einsum("ah,nhHwW,AH,bw,BW->naAbB", wh, want.cov1, wh, ww,
                          ww), rtol=1e-12, atol=1e-15)


def test_nearest_along_the_batch_axis_selects_examples():
  layer = stax.ImageResize((6, -1, -1, -1), "nearest")
  got = natural(stax.serial(*trunk(), layer)[2](X1, X2), "nngp")
  i1, i2 = nearest(3, 6), nearest(2, 6)
  np.testing.assert_allclose(got, base_kernel().nngp[i1][:, i2], rtol=1e-13,
                             atol=1e-15)


def test_linear_along_the_batch_axis_mixes_examples():
  # Needs the full batch covariance cov1 (diagonal_batch=False), which the
  # layer asks for.
  layer = stax.ImageResize((2, -1, -1, -1), "linear")
  k = stax.serial(*trunk(), layer)[2](X1, None)
  assert not k.diagonal_batch
  got = Natural(k)
  w = resize_matrix(3, 2, "linear")
  want = base_kernel(x2_is_none=True).nngp
  np.testing.assert_allclose(
      got.nngp, np.einsum("an,nmhHwW,bm->abhHwW", w, want, w), rtol=1e-12,
      atol=1e-15)
  np.testing.assert_allclose(got.cov1, got.nngp, rtol=1e-13, atol=1e-15)


def test_apply_fn_is_jax_image_resize():
  init_fn, apply_fn, _ = stax.ImageResize((-1, 3, 7, -1), "linear")
  out_shape, params = init_fn(jax.random.PRNGKey(0), X1.shape)
  assert out_shape == (3, 3, 7, 2)
  np.testing.assert_allclose(apply_fn(params, X1),
                             jax.image.resize(X1, out_shape, "linear"))


@pytest.mark.parametrize("x2", [None, X2])
@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_conformance_suite(x2, method):
  # A Dense trunk: check_kernel_fn also runs the network with jit disabled,
  # one XLA compilation per op, which a Conv rule makes slow; the closed-form
  # tests above cover the convolution (reversed) layout.
  net = stax.serial(stax.Dense(3, W_std=1.3, b_std=0.2), stax.Erf(),
                    stax.ImageResize((-1, 3, 3, -1), method),
                    stax.Dense(2, W_std=1.1, b_std=0.1))
  ntcore.testing.check_kernel_fn(net, X1, x2)


def test_masks_follow_content_over_padding():
  x = X1.copy()
  x[0, :2] = 5.  # top half of example 0 is padding
  layer = stax.ImageResize((-1, 2, -1, -1), "linear")
  k = stax.serial(stax.Dense(3), layer, stax.Dense(2))[2](
      x, None, mask_constant=5.)
  # 4 -> 2 rows with the triangle filter: output row 0 reads rows 0-2,
  # output row 1 rows 1-3; row 0 still sees unmasked row 2.
  weights = resize_matrix(4, 2, "linear")
  expect = (weights[:, 2:] == 0).all(1)  # reads only padding rows 0-1
  mask = np.asarray(k.mask1)[0, :, 0, 0]
  np.testing.assert_array_equal(mask, expect)
  assert not np.asarray(k.mask1)[1:].any()
  # Nearest: row 0 reads row 1 (padding), row 1 reads row 3.
  k2 = stax.serial(stax.Dense(3), stax.ImageResize((-1, 2, -1, -1), "nearest"),
                   stax.Dense(2))[2](x, None, mask_constant=5.)
  np.testing.assert_array_equal(np.asarray(k2.mask1)[0, :, 0, 0],
                                [True, False])
  assert np.all(np.asarray(k2.nngp)[0, :, 0] == 0)


@pytest.mark.parametrize("method", ["cubic", "lanczos3"])
def test_methods_without_a_kernel_point_to_monte_carlo(method):
  init_fn, apply_fn, kernel_fn = stax.serial(
      *trunk(), stax.ImageResize((-1, 2, 3, -1), method))
  _, params = init_fn(jax.random.PRNGKey(0), X1.shape)
  assert apply_fn(params, X1).shape == (3, 2, 3, 3)  # the finite net works
  with pytest.raises(NotImplementedError, match="monte_carlo_kernel_fn"):
    kernel_fn(X1)


def test_resizing_channels_names_the_fix():
  net = stax.serial(*trunk(), stax.ImageResize((-1, -1, -1, 5), "nearest"))
  with pytest.raises(KernelRequirementError, match=r"shape\[3\] = -1"):
    net[2](X1)


def test_linear_with_diagonal_spatial_fails_clearly():
  net = stax.serial(*trunk(), stax.ImageResize((-1, 2, 2, -1), "linear"))
  with pytest.raises(KernelRequirementError, match="off-diagonal spatial"):
    net[2](X1, None, diagonal_spatial=True)


def test_unknown_method_is_rejected_early():
  with pytest.raises(ValueError, match="'nearest' or 'linear'"):
    stax.ImageResize((-1, 2, 2, -1), "bogus")
  stax.ImageResize((-1, 2, 2, -1), "LINEAR")  # NT's docs spell it this way


@pytest.mark.slow
@pytest.mark.parametrize("method, pooled", [("nearest", False),
                                            ("linear", False),
                                            ("linear", True)])
def test_agrees_with_monte_carlo(method, pooled):
  # Resizing is linear with fixed weights, so the pre-activations before
  # the readout are exactly Gaussian given the first layer: the Monte Carlo
  # mean is unbiased; only sampling error (z = 6 standard errors, 16 groups).
  # `pooled`: a Conv first layer and GlobalAvgPool (full spatial kernel,
  # stored reversed), resizing a non-square image to another shape.
  first = (stax.Conv(256, (2, 2), padding="SAME", W_std=1.3, b_std=0.2)
           if pooled else stax.Dense(256, W_std=1.3, b_std=0.2))
  pool = [stax.GlobalAvgPool()] if pooled else []
  net = stax.serial(first, stax.Relu(),
                    stax.ImageResize((-1, 3, 2, -1), method), *pool,
                    stax.Dense(1, W_std=1.1, b_std=0.1))
  ntcore.testing.check_monte_carlo(net, X1[:2], X2[:2],
                                   key=jax.random.PRNGKey(11), n_samples=128,
                                   bias=0.)
