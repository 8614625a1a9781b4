"""`Index` and `Slice`: closed forms (the kernel of `x[idx]` is the kernel
indexed along each axis), the conformance suite, masks, layouts, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntcore.testing
from ntcore import ShapeError, get_registry, stax

from _exact import natural

rng = np.random.default_rng(0)
X1 = rng.normal(size=(4, 5, 4, 3))  # NHWC
X2 = rng.normal(size=(3, 5, 4, 3))


def trunk(width=4):
  # A convolution, so that full spatial kernels arrive stored reversed (NT's
  # layout, `is_reversed`). Erf, not Relu: Relu's dual has a square-root
  # singularity at correlation 1, so two differently compiled programs (with
  # and without the layer under test) would differ by ~sqrt(eps) on the
  # diagonal; Erf's dual is smooth there, and the closed forms below hold to
  # round-off.
  return [stax.Conv(width, (2, 2), padding="SAME", W_std=1.3, b_std=0.2),
          stax.Erf()]


def indexed(mat, entries, batch_entry=slice(None), n_batch=2, diag=False):
  """Index a `(n1, n2, h, h', w, w')` (or diagonal) array axis by axis."""
  for position, entry in reversed(list(enumerate(
      [batch_entry] * n_batch + [e for e in entries
                                 for _ in range(1 if diag else 2)]))):
    mat = np.take(mat, np.arange(mat.shape[position])[entry], axis=position)
  return mat


@functools.lru_cache
def base(diag=False):
  """The trunk's kernel of (X1, X2), computed once per layout."""
  return stax.serial(*trunk())[2](X1, X2, diagonal_spatial=diag)


def test_slice_spells_the_index():
  assert stax.Slice[1:3, ::2] == (slice(1, 3), slice(None, None, 2))
  assert stax.Slice[..., 0] == (Ellipsis, 0)
  assert get_registry().layers.get("Index").plugin == "nt-conv"


@pytest.mark.parametrize("idx, spatial", [
    (stax.Slice[:, 1:4, ::2], (slice(1, 4), slice(None, None, 2))),
    (stax.Slice[:, ::-1], (slice(None, None, -1), slice(None))),
    (stax.Slice[..., 1:, :], (slice(None), slice(1, None))),
    (stax.Slice[:, [4, 0, 0]], (np.array([4, 0, 0]), slice(None))),
])
@pytest.mark.parametrize("diag", [False, True])
def test_kernel_is_the_indexed_kernel(idx, spatial, diag):
  # x[idx] selects entries, so its covariance is the covariance indexed the
  # same way on both members of every axis pair: exact, no tolerance needed
  # beyond round-off. The stored layout (reversed after Conv) is kept.
  _, _, net = stax.serial(*trunk(), stax.Index(idx))
  want = base(diag)
  got = net(X1, X2, diagonal_spatial=diag)
  assert got.is_reversed == want.is_reversed == (not diag)
  for field in ("nngp", "ntk", "cov1", "cov2"):
    n_batch = 1 if field in ("cov1", "cov2") else 2
    np.testing.assert_allclose(
        natural(got, field),
        indexed(natural(want, field), spatial, n_batch=n_batch, diag=diag),
        rtol=1e-13, atol=1e-15)


def test_integer_index_drops_the_axis_and_moves_the_channel_axis():
  init_fn, apply_fn, net = stax.serial(*trunk(), stax.Index(stax.Slice[:, 2]))
  k = net(X1, X2)
  assert k.shape1 == (4, 4, 4) and k.channel_axis == 2
  np.testing.assert_allclose(k.nngp, natural(base(), "nngp")[:, :, 2, 2],
                             rtol=1e-13, atol=1e-15)
  out_shape, params = init_fn(jax.random.PRNGKey(0), X1.shape)
  assert out_shape == (4, 4, 4)
  assert apply_fn(params, X1).shape == out_shape


def test_batch_slice_indexes_both_batches():
  _, _, net = stax.serial(*trunk(), stax.Index(stax.Slice[::2, 1:3]))
  want = natural(base(), "nngp")[::2, ::2, 1:3, 1:3]
  np.testing.assert_allclose(natural(net(X1, X2), "nngp"), want, rtol=1e-13,
                             atol=1e-15)


def test_apply_fn_is_numpy_indexing():
  idx = stax.Slice[1:, ::-2, ..., :]
  init_fn, apply_fn, _ = stax.Index(idx)
  out_shape, params = init_fn(jax.random.PRNGKey(0), X1.shape)
  np.testing.assert_array_equal(apply_fn(params, X1), X1[idx])
  assert out_shape == X1[idx].shape


@pytest.mark.parametrize("x2", [None, X2])
def test_conformance_suite(x2):
  # A Dense trunk: check_kernel_fn also runs the network with jit disabled,
  # one XLA compilation per op, which a Conv rule makes slow; the closed-form
  # tests above cover the convolution (reversed) layout.
  net = stax.serial(stax.Dense(3, W_std=1.3, b_std=0.2), stax.Erf(),
                    stax.Index(stax.Slice[:, 1:4, ::-1]),
                    stax.Dense(2, W_std=1.1, b_std=0.1))
  ntcore.testing.check_kernel_fn(net, X1, x2)


def test_channels_first_layout():
  # NCHW: the same network with the channel axis at 1 gives the same kernel.
  nchw = [stax.Dense(4, W_std=1.3, b_std=0.2, channel_axis=1), stax.Erf(),
          stax.Index(stax.Slice[:, :, 1:4, ::2], channel_axis=1)]
  nhwc = [stax.Dense(4, W_std=1.3, b_std=0.2), stax.Erf(),
          stax.Index(stax.Slice[:, 1:4, ::2])]
  got = stax.serial(*nchw)[2](np.moveaxis(X1, -1, 1), None, "nngp")
  want = stax.serial(*nhwc)[2](X1, None, "nngp")
  np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_reversed_and_natural_layouts_agree():
  # The same kernel stored in both orders gives the same result, each in
  # its own order.
  _, _, base = stax.serial(stax.Dense(4, W_std=1.3, b_std=0.2), stax.Erf())
  k = base(X1, X2)
  rev = k.replace(
      nngp=jnp.transpose(k.nngp, (0, 1, 4, 5, 2, 3)),
      ntk=jnp.transpose(k.ntk, (0, 1, 4, 5, 2, 3)),
      cov1=jnp.transpose(k.cov1, (0, 3, 4, 1, 2)),
      cov2=jnp.transpose(k.cov2, (0, 3, 4, 1, 2)), is_reversed=True)
  _, _, index_fn = stax.Index(stax.Slice[:, 1:4, ::2])
  want, got = index_fn(k), index_fn(rev)
  assert got.is_reversed and not want.is_reversed
  for field in ("nngp", "ntk", "cov1", "cov2"):
    np.testing.assert_allclose(natural(got, field), getattr(want, field),
                               rtol=1e-13, atol=1e-15)


def test_masks_are_indexed():
  x = X1.copy()
  x[0, 1] = 7.  # row 1 of example 0 is padding
  x[2, :, 3] = 7.
  idx = stax.Slice[:, 1:, 2:]
  _, _, net = stax.serial(*trunk(), stax.Index(idx),
                          stax.Dense(2, W_std=1.1, b_std=0.1))
  k = net(x, None, mask_constant=7.)
  np.testing.assert_array_equal(np.asarray(k.mask1)[..., 0],
                                (x == 7.).all(-1)[idx])
  # Masked positions have exactly zero covariance with everything.
  nngp = natural(k, "nngp")  # (n1, n2, h, h', w, w')
  assert np.all(nngp[0, :, 0] == 0) and np.all(nngp[:, 2, :, :, :, 1] == 0)
  assert np.all(nngp[1, 3] != 0)


def test_indexing_the_channel_axis_names_the_fix():
  _, _, net = stax.serial(*trunk(), stax.Index(stax.Slice[..., :2]))
  # Also a NotImplementedError, as NT raises.
  with pytest.raises(NotImplementedError, match="Use ':' for the channel"):
    net(X1)


def test_integer_batch_index_names_the_fix():
  _, _, net = stax.serial(*trunk(), stax.Index(stax.Slice[0]))
  with pytest.raises(NotImplementedError, match="Use a slice such as 0:1"):
    net(X1)


@pytest.mark.parametrize("idx, match", [
    (stax.Slice[:, None], "new axis"),
    (stax.Slice[:, [0, 1], [0, 1]], "more than one axis"),
    (stax.Slice[..., 0, ...], r"more than one '\.\.\.'"),
    (stax.Slice[:, :, :, :, 0], "only 4 axes"),
])
def test_non_basic_indices_are_rejected(idx, match):
  init_fn, _, _ = stax.Index(idx)
  with pytest.raises(ShapeError, match=match):
    init_fn(jax.random.PRNGKey(0), X1.shape)


@pytest.mark.slow
@pytest.mark.parametrize("pooled", [False, True])
def test_agrees_with_monte_carlo(pooled):
  # Index is a selection, so the finite network's pre-activations before the
  # readout are exactly Gaussian given the first layer: the Monte Carlo mean
  # is unbiased and only sampling error (z = 6 standard errors from 16
  # groups) is allowed. `pooled`: a Conv first layer and GlobalAvgPool, which
  # needs the full spatial kernel, so Index gets it stored reversed.
  first = (stax.Conv(256, (2, 2), padding="SAME", W_std=1.3, b_std=0.2)
           if pooled else stax.Dense(256, W_std=1.3, b_std=0.2))
  pool = [stax.GlobalAvgPool()] if pooled else []
  net = stax.serial(first, stax.Relu(), stax.Index(stax.Slice[:, 1:3, ::2]),
                    *pool, stax.Dense(1, W_std=1.1, b_std=0.1))
  ntcore.testing.check_monte_carlo(net, X1[:2, :3, :3], X2[:2, :3, :3],
                                   key=jax.random.PRNGKey(5), n_samples=128,
                                   bias=0.)
