"""`apply_fn(params, x, mask_constant=c)` masks the finite network as NT does.

Entries equal to `c` are zeroed before every layer and the mask travels
with the activations (`MaskedArray`), through the same `mask_fn` that
carries `Kernel.mask1` in `kernel_fn`. So a padded example gives the
outputs of the unpadded one wherever the network only sums over positions
(here: a global average over unmasked positions).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntcore import stax
from ntcore.testing import check_monte_carlo

PAD = -7.
RNG = np.random.RandomState(0)


def network():
  return stax.serial(stax.Conv(8, (1,), b_std=0.2), stax.Relu(),
                     stax.GlobalAvgPool(), stax.Dense(2))


def padded(lengths, total=5, channels=3):
  seqs = [RNG.normal(size=(n, channels)) for n in lengths]
  x = np.full((len(seqs), total, channels), PAD)
  for i, s in enumerate(seqs):
    x[i, :len(s)] = s
  return seqs, x


def test_padded_examples_give_the_unpadded_outputs():
  init_fn, apply_fn, _ = network()
  seqs, x = padded([5, 3, 1])
  _, params = init_fn(jax.random.PRNGKey(0), x.shape)
  out = apply_fn(params, x, mask_constant=PAD)
  assert isinstance(out, stax.MaskedArray)
  values = stax.unmask_fn(apply_fn)(params, x, mask_constant=PAD)
  for i, s in enumerate(seqs):
    np.testing.assert_allclose(values[i], apply_fn(params, s[None])[0],
                               rtol=1e-12)
  # Without masking the padding leaks into the average.
  assert not np.allclose(apply_fn(params, x)[1], values[1])


def test_mask_keyword_is_the_same_as_mask_constant():
  init_fn, apply_fn, _ = network()
  _, x = padded([4, 2])
  _, params = init_fn(jax.random.PRNGKey(1), x.shape)
  a = stax.unmask_fn(apply_fn)(params, x, mask_constant=PAD)
  b = stax.unmask_fn(apply_fn)(params, x, mask=x == PAD)
  np.testing.assert_array_equal(a, b)


def test_masked_values_are_zeroed_before_each_layer():
  """NT zeroes masked entries on the way in: a Dense layer sees 0, not c."""
  init_fn, apply_fn, _ = stax.Dense(4, b_std=None)
  x = np.array([[1., PAD, 2.]])
  _, params = init_fn(jax.random.PRNGKey(0), x.shape)
  out = apply_fn(params, x, mask_constant=PAD)
  np.testing.assert_allclose(out.masked_value,
                             apply_fn(params, np.array([[1., 0., 2.]])),
                             rtol=1e-12)
  # Dense mixes channels: a position is masked only if all of it was.
  np.testing.assert_array_equal(out.mask, [[False]])


def test_nan_as_mask_constant_masks_nans():
  _, apply_fn, _ = stax.Relu()
  x = jnp.array([[1., np.nan, -2.]])
  out = apply_fn((), x, mask_constant=np.nan)
  np.testing.assert_array_equal(out.mask, [[False, True, False]])
  np.testing.assert_array_equal(stax.unmask_fn(apply_fn)((), x,
                                                         mask_constant=np.nan),
                                [[1., 0., 0.]])


def test_no_mask_returns_plain_arrays_and_jit_works():
  init_fn, apply_fn, _ = network()
  _, x = padded([5, 2])
  _, params = init_fn(jax.random.PRNGKey(0), x.shape)
  assert isinstance(apply_fn(params, x), jax.Array)
  jitted = jax.jit(stax.unmask_fn(apply_fn), static_argnames="mask_constant")
  np.testing.assert_allclose(
      jitted(params, x, mask_constant=PAD),
      stax.unmask_fn(apply_fn)(params, x, mask_constant=PAD), rtol=1e-12)


def test_the_finite_and_infinite_networks_mask_alike():
  """The Monte Carlo kernel of the masked finite network is the masked
  kernel (one hidden layer: the estimator is unbiased, so the error bar is
  the sampling error alone, from 16 group means)."""
  init_fn, apply_fn, kernel_fn = stax.serial(
      stax.Conv(512, (1,), b_std=0.2), stax.Relu(), stax.GlobalAvgPool(),
      stax.Dense(1))
  _, x = padded([4, 2, 3], total=4)

  def masked_apply(params, inputs, **kwargs):
    return apply_fn(params, inputs, mask_constant=PAD, **kwargs)

  def masked_kernel(x1, x2, get):
    return kernel_fn(x1, x2, get, mask_constant=PAD)

  check_monte_carlo((init_fn, stax.unmask_fn(masked_apply), masked_kernel),
                    x, None, n_samples=256, bias=0.)
  # Unmasked, the kernel sees the padding: it is not the masked kernel.
  exact = masked_kernel(x, None, "nngp")
  assert np.abs(kernel_fn(x, None, "nngp") - exact).max() > 0.2 * np.abs(
      exact).max()


def test_a_shape_changing_layer_without_mask_fn_refuses_masks():
  @stax.layer
  def Double():  # pylint: disable=invalid-name
    return (lambda key, s: (s[:-1] + (2 * s[-1],), ()),
            lambda p, x, **kw: jnp.concatenate([x, x], -1),
            lambda k, **kw: k)

  with pytest.raises(ValueError, match="does not support masked inputs"):
    Double()[1]((), np.array([[1., PAD]]), mask_constant=PAD)
