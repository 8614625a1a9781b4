"""`GlobalAvgPool` and `GlobalSumPool`: pool away every spatial axis."""

from __future__ import annotations

import math

import jax.numpy as jnp

from ntcore import Diag, Requirements, make_layer

from nt_conv import _masks


def GlobalAvgPool(batch_axis: int = 0, channel_axis: int = -1):
  """Averages over (and removes) all spatial axes; batch and channel stay.

  With a mask (`mask_constant`), the mean is over the unmasked positions of
  each example (as NT: the sum of all entries over the count of unmasked ones).

  Kernel (NT paper Table 1): `nngp'(a, b) = sum_{i, j} K_ab(i, j) / (n_a n_b)`
  over all position pairs, `n_a` the number of (unmasked) positions of `a`;
  likewise the NTK. A diagonal-spatial input is only possible when its
  off-diagonal entries are zero (after `ConvLocal`): then `sum_i K_ab(i, i)`
  over the same denominator.
  """
  return _global_pool("GlobalAvgPool", True, batch_axis, channel_axis)


def GlobalSumPool(batch_axis: int = 0, channel_axis: int = -1):
  """Sums over (and removes) all spatial axes; batch and channel stay.

  Kernel: `nngp'(a, b) = sum_{i, j} K_ab(i, j)` over all position pairs
  (`sum_i K_ab(i, i)` for a diagonal-spatial input with zero off-diagonal
  entries); likewise the NTK.
  """
  return _global_pool("GlobalSumPool", False, batch_axis, channel_axis)


def _global_pool(name, average, batch_axis, channel_axis):
  def non_spatial(ndim):
    return batch_axis % ndim, channel_axis % ndim

  def init_fn(key, input_shape):
    del key
    keep = non_spatial(len(input_shape))
    return tuple(n for a, n in enumerate(input_shape) if a in keep), ()

  def apply_fn(params, inputs, mask=None, **kwargs):
    del params, kwargs
    keep = non_spatial(inputs.ndim)
    axes = tuple(a for a in range(inputs.ndim) if a not in keep)
    if mask is not None:  # masked entries contribute nothing (NT zeroes them)
      inputs = jnp.where(mask, jnp.zeros((), inputs.dtype), inputs)
    total = jnp.sum(inputs, axes)
    if not average:
      return total
    if mask is None:
      return total / math.prod(inputs.shape[a] for a in axes)
    masked = jnp.sum(jnp.broadcast_to(mask, inputs.shape), axes)
    count = math.prod(inputs.shape[a] for a in axes) - masked
    return total / jnp.maximum(count, 1)

  def rule(k, **kwargs):
    del kwargs
    size = math.prod(k.spatial_shape())
    p1, p2 = k.mask_positions()

    def count(pa, pb, one_batch_axis):
      """Unmasked positions of a times of b, in the array's batch layout."""
      axes = tuple(range(1, pa.ndim))
      na = size - jnp.sum(pa, axes)
      nb = size - jnp.sum(pb, axes)
      n = na * nb if one_batch_axis else na[:, None] * nb[None, :]
      return jnp.maximum(n, 1)

    def pool(m, batch_ndim, pa, pb):
      if m is None or m.ndim == 0:
        return m
      total = jnp.sum(m, tuple(range(batch_ndim, m.ndim)))
      if not average:
        return total
      if pa is None:
        return total / size ** 2
      return total / count(pa, pb, batch_ndim == 1).astype(total.dtype)

    cb = 1 if k.diagonal_batch else 2
    ndim = len(k.shape1)
    batch_first = batch_axis % ndim < channel_axis % ndim
    return k.replace(nngp=pool(k.nngp, 2, p1, p2), ntk=pool(k.ntk, 2, p1, p2),
                     cov1=pool(k.cov1, cb, p1, p1),
                     cov2=pool(k.cov2, cb, p2, p2),
                     batch_axis=0 if batch_first else 1,
                     channel_axis=1 if batch_first else 0, is_reversed=False)

  def mask_fn(mask, input_shape):
    del input_shape
    _masks.check_channel_mask(mask, channel_axis, name)
    keep = non_spatial(mask.ndim)
    return jnp.all(mask, tuple(a for a in range(mask.ndim) if a not in keep))

  return make_layer(name, init_fn, apply_fn, rule,
                    Requirements(batch_axis=batch_axis,
                                 channel_axis=channel_axis,
                                 diagonal_spatial=Diag.REMOVES_FULL),
                    mask_fn)
