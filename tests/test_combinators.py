"""serial, parallel, FanOut / FanIn*, Identity and repeat, on fake layers."""

import importlib.util
import pathlib

import jax
import numpy as np
import pytest

from ntcore import ShapeError, stax

_spec = importlib.util.spec_from_file_location(
    "fakes", pathlib.Path(__file__).with_name("fakes.py"))
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)

rng = np.random.default_rng(1)
X1 = rng.normal(size=(4, 5))
X2 = rng.normal(size=(3, 5))
C = X1 @ X2.T / 5  # input covariance


def test_serial_init_apply_shapes_and_params():
  init_fn, apply_fn, _ = stax.serial(fakes.linear(7), fakes.square(),
                                     fakes.linear(2))
  shape, params = init_fn(jax.random.PRNGKey(0), (4, 5))
  assert shape == (4, 2) and len(params) == 3
  assert apply_fn(params, X1).shape == (4, 2)


def test_fan_out_parallel_fan_in_sum_adds_covariances():
  a = fakes.linear(w_var=1., b_var=0.)
  b = fakes.linear(w_var=2., b_var=1.)
  init_fn, apply_fn, kernel_fn = stax.serial(
      stax.FanOut(2), stax.parallel(a, b), stax.FanInSum())
  k = kernel_fn(X1, X2, ("nngp", "ntk"))
  np.testing.assert_allclose(k.nngp, C + (2 * C + 1), rtol=1e-13)
  np.testing.assert_allclose(k.ntk, C + (2 * C + 1), rtol=1e-13)
  shape, params = init_fn(jax.random.PRNGKey(0), X1.shape)
  assert shape == (4, 3) and apply_fn(params, X1).shape == (4, 3)


def test_fan_in_prod_product_rule():
  a = fakes.linear(w_var=1., b_var=0.)
  b = fakes.linear(w_var=2., b_var=1.)
  _, _, kernel_fn = stax.serial(stax.FanOut(2), stax.parallel(a, b),
                                stax.FanInProd())
  k = kernel_fn(X1, X2)
  ka, kb = C, 2 * C + 1
  np.testing.assert_allclose(k.nngp, ka * kb, rtol=1e-13)
  # ntk_a = nngp_a, ntk_b = nngp_b for a single linear layer.
  np.testing.assert_allclose(k.ntk, ka * kb + kb * ka, rtol=1e-13)
  assert not k.is_gaussian


def test_fan_in_concat_weights_by_width():
  a = fakes.linear(out_dim=1, w_var=1., b_var=0.)
  b = fakes.linear(out_dim=3, w_var=2., b_var=1.)
  init_fn, _, kernel_fn = stax.serial(stax.FanOut(2), stax.parallel(a, b),
                                      stax.FanInConcat())
  k = kernel_fn(X1, X2)
  np.testing.assert_allclose(k.nngp, (1 * C + 3 * (2 * C + 1)) / 4, rtol=1e-13)
  assert init_fn(jax.random.PRNGKey(0), X1.shape)[0] == (4, 4)


def test_parallel_needs_one_input_per_branch():
  with pytest.raises(ShapeError, match="FanOut"):
    stax.parallel(fakes.linear(), fakes.linear()).kernel_fn(X1)


def test_fan_in_sum_needs_equal_shapes():
  net = stax.serial(stax.FanOut(2), stax.parallel(fakes.linear(2), fakes.linear(3)),
                    stax.FanInSum())
  with pytest.raises(ShapeError, match="one shape"):
    net.init_fn(jax.random.PRNGKey(0), X1.shape)


def test_identity_keeps_kernel():
  _, _, kernel_fn = stax.serial(fakes.linear(w_var=1., b_var=0.), stax.Identity())
  np.testing.assert_allclose(kernel_fn(X1, X2, "nngp"), C, rtol=1e-13)


def test_repeat_equals_serial():
  layer = stax.serial(fakes.linear(out_dim=5, w_var=1.5, b_var=0.1),
                      fakes.square())
  first = fakes.linear(out_dim=5)
  _, _, k_rep = stax.serial(first, stax.repeat(layer, 3))
  _, _, k_ser = stax.serial(first, layer, layer, layer)
  for get in ("nngp", "ntk"):
    np.testing.assert_allclose(k_rep(X1, X2, get), k_ser(X1, X2, get),
                               rtol=1e-12)
  init_fn, apply_fn, _ = stax.repeat(fakes.linear(out_dim=5), 4)
  shape, params = init_fn(jax.random.PRNGKey(0), (4, 5))
  assert shape == (4, 5) and params.shape == (4, 5, 5)
  assert apply_fn(params, X1).shape == (4, 5)


def test_repeat_needs_shape_preserving_layer():
  with pytest.raises(ShapeError, match="keeps its input shape"):
    stax.repeat(fakes.linear(out_dim=2), 2).init_fn(jax.random.PRNGKey(0), (4, 5))


def test_masks_pass_through_fan_out_and_fan_in_sum():
  x = X1.copy()
  x[2] = 7.
  net = stax.serial(fakes.linear(), stax.FanOut(2),
                    stax.parallel(fakes.linear(), fakes.linear()),
                    stax.FanInSum(), fakes.linear())
  k = net.kernel_fn(x, None, mask_constant=7.)
  nngp = np.asarray(k.nngp)
  assert np.all(nngp[2] == 0) and np.all(nngp[:, 2] == 0)
  assert k.mask1.shape == (4, 1) and bool(k.mask1[2, 0])
