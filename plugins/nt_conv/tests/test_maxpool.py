"""`MaxPool`: the finite layer against a direct loop, its finite-only
registration, the error of `kernel_fn`, and Monte Carlo as the way out."""

import itertools

import jax
import numpy as np
import pytest

import ntcore
import ntcore.testing
from ntcore import get_registry, stax

rng = np.random.default_rng(3)
X = rng.normal(size=(2, 5, 6, 3))  # NHWC


def max_pool_loop(x, window, strides, padding):
  """Direct max pooling of an NHWC array (reference implementation)."""
  n, h, w, c = x.shape
  if padding == "VALID":
    pads = [(0, 0), (0, 0)]
  else:  # SAME / CIRCULAR: XLA's split, extra padding at the end
    pads = []
    for size, f, s in zip((h, w), window, strides):
      out = -(-size // s)
      total = max((out - 1) * s + f - size, 0)
      pads.append((total // 2, total - total // 2))
  mode = dict(mode="wrap") if padding == "CIRCULAR" else dict(
      mode="constant", constant_values=-np.inf)
  xp = np.pad(x, [(0, 0), *pads, (0, 0)], **mode)
  oh = (xp.shape[1] - window[0]) // strides[0] + 1
  ow = (xp.shape[2] - window[1]) // strides[1] + 1
  out = np.empty((n, oh, ow, c))
  for i, j in itertools.product(range(oh), range(ow)):
    patch = xp[:, i * strides[0]:i * strides[0] + window[0],
               j * strides[1]:j * strides[1] + window[1]]
    out[:, i, j] = patch.max(axis=(1, 2))
  return out


@pytest.mark.parametrize("padding", ["VALID", "SAME", "CIRCULAR"])
@pytest.mark.parametrize("window, strides", [((2, 2), None), ((3, 2), (2, 1)),
                                             ((2, 3), (1, 2))])
def test_apply_fn_matches_a_direct_loop(padding, window, strides):
  init_fn, apply_fn, _ = stax.MaxPool(window, strides, padding)
  out_shape, params = init_fn(jax.random.PRNGKey(0), X.shape)
  y = apply_fn(params, X)
  want = max_pool_loop(X, window, strides or (1, 1), padding)
  assert out_shape == y.shape == want.shape
  np.testing.assert_array_equal(y, want)


def test_channels_first():
  init_fn, apply_fn, _ = stax.MaxPool((2, 2), (2, 2), channel_axis=1)
  x = np.moveaxis(X, -1, 1)
  out_shape, params = init_fn(jax.random.PRNGKey(0), x.shape)
  y = apply_fn(params, x)
  assert out_shape == y.shape == (2, 3, 2, 3)
  np.testing.assert_array_equal(
      y, np.moveaxis(max_pool_loop(X, (2, 2), (2, 2), "VALID"), -1, 1))


def test_registered_as_finite_only():
  spec = get_registry().layers.get("MaxPool")
  assert (spec.kernel, spec.plugin) == ("finite-only", "nt-conv")


def test_kernel_fn_points_to_monte_carlo():
  _, _, kernel_fn = stax.serial(stax.Dense(3), stax.Relu(),
                                stax.MaxPool((2, 2)), stax.Dense(1))
  with pytest.raises(NotImplementedError, match="monte_carlo_kernel_fn"):
    kernel_fn(X)


def test_bad_arguments_are_rejected():
  with pytest.raises(ValueError, match="padding"):
    stax.MaxPool((2, 2), padding="FULL")
  init_fn, _, _ = stax.MaxPool((2, 2, 2))
  with pytest.raises(ValueError, match="one window size per spatial axis"):
    init_fn(jax.random.PRNGKey(0), X.shape)


def test_monte_carlo_kernel_of_a_max_pool_network():
  # No closed form, but the Monte Carlo estimate is a kernel: symmetric and
  # PSD (the NTK needs max pooling's gradient, which JAX has).
  init_fn, apply_fn, _ = stax.serial(stax.Dense(16, W_std=1.5), stax.Relu(),
                                     stax.MaxPool((2, 2), (2, 2)),
                                     stax.Flatten(), stax.Dense(1))
  mc = ntcore.monte_carlo_kernel_fn(init_fn, apply_fn, jax.random.PRNGKey(0),
                                    8)
  for m in mc(X, None, ("nngp", "ntk")):
    m = np.asarray(m)
    assert m.shape == (2, 2) and np.all(np.isfinite(m))
    np.testing.assert_allclose(m, m.T, rtol=1e-12)
    assert ntcore.testing.psd_violation(m) < 1e-12


@pytest.mark.slow
def test_one_by_one_max_pool_is_the_identity_in_monte_carlo():
  # A 1x1 window is the identity, so the Monte Carlo kernel of the network
  # with it must match the analytic kernel of the network without it; the
  # pre-readout activations are exactly Gaussian given the first layer, so
  # only sampling error is allowed (z = 6 standard errors from 16 groups).
  x1, x2 = X[:, :2, :2], rng.normal(size=(1, 2, 2, 3))
  head = [stax.Dense(256, W_std=1.3, b_std=0.2), stax.Relu()]
  tail = [stax.Dense(1, W_std=1.1, b_std=0.1)]
  init_fn, apply_fn, _ = stax.serial(*head, stax.MaxPool((1, 1)), *tail)
  _, _, kernel_fn = stax.serial(*head, stax.Identity(), *tail)
  ntcore.testing.check_monte_carlo((init_fn, apply_fn, kernel_fn), x1, x2,
                                   key=jax.random.PRNGKey(13), n_samples=128,
                                   bias=0.)
