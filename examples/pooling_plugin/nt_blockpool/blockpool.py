"""`BlockAvgPool`: the mean over non-overlapping blocks of positions."""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

from ntcore import Diag, Kernel, Layer, Requirements, ShapeError, make_layer


def _check(window_shape: tuple[int, ...], input_shape) -> None:
  n_spatial = len(input_shape) - 2
  if len(window_shape) != n_spatial or any(w < 1 for w in window_shape):
    raise ShapeError(
        f"BlockAvgPool(window_shape={window_shape}) needs one positive size "
        f"per spatial axis of its input of shape {tuple(input_shape)} (NHWC: "
        f"{n_spatial} spatial axes). Pass {n_spatial} sizes.")


def _blocks(x, axes: Sequence[int], windows: Sequence[int]):
  """`x` with axis `axes[i]` of size `s` split into `(s // w, w)`, `w = windows[i]`
  (a trailing `s % w` is dropped, as VALID pooling does); returns the new
  array and the positions of the `w` axes."""
  shape, inner = [], []
  for a, n in enumerate(x.shape):
    if a in axes:
      w = windows[list(axes).index(a)]
      x = jnp.take(x, jnp.arange(n - n % w), axis=len(shape)) if n % w else x
      shape += [n // w, w]
      inner.append(len(shape) - 1)
    else:
      shape.append(n)
  return x.reshape(shape), tuple(inner)


def _pool_covariance(m, batch_ndim: int, group: int, windows: Sequence[int]):
  """Block means of one covariance array, each spatial group in its stored slot.

  Full pairs (`group=2`): `m'[o, o'] = mean_{d, d'} m[o w + d, o' w + d']`.
  Same positions only (`group=1`, off-diagonal pairs known to be zero):
  `m'[o] = (1 / w^2) sum_d m[o w + d]`, i.e. the block mean divided by `w`.
  """
  axes = [batch_ndim + group * i + j for i in range(len(windows))
          for j in range(group)]
  per_axis = [w for w in windows for _ in range(group)]
  blocks, inner = _blocks(m, axes, per_axis)
  out = jnp.mean(blocks, axis=inner)
  if group == 1:
    for w in windows:
      out = out / w
  return out


def BlockAvgPool(window_shape: Sequence[int]) -> Layer:
  """Average pooling over non-overlapping blocks of `window_shape` positions.

  Inputs are NHWC (batch first, channels last). `y[o] = mean_d x[o w + d]`
  over each block; an incomplete block at the end of an axis is dropped.

  Kernel: the layer is linear and the same for every channel, so each
  spatial pair of a covariance is averaged over both blocks,
  `nngp'[o, o'] = mean_{d, d'} nngp[o w + d, o' w + d']` (likewise `ntk`,
  `cov1`, `cov2`; no parameters, so the NTK is pooled too). Off-diagonal
  pairs are read (`Diag.NEEDS_FULL`). Gaussian inputs stay Gaussian.

  Args:
    window_shape: block size along each spatial axis, e.g. `(2, 2)`.

  Raises:
    ShapeError: if `window_shape` does not give one positive size per
      spatial axis of the input.
  """
  window_shape = tuple(int(w) for w in window_shape)

  def init_fn(key, input_shape):
    del key
    _check(window_shape, input_shape)
    n, *spatial, c = input_shape
    return (n, *[s // w for s, w in zip(spatial, window_shape)], c), ()

  def apply_fn(params, x, **kwargs):
    del params, kwargs
    _check(window_shape, x.shape)
    blocks, inner = _blocks(x, range(1, x.ndim - 1), window_shape)
    return jnp.mean(blocks, axis=inner)

  def rule(k: Kernel, **kwargs) -> Kernel:
    """`nngp'[o, o'] = mean_{d, d'} nngp[o w + d, o' w + d']` per spatial pair."""
    del kwargs
    # The groups may be stored reversed (after a Conv): take each group's
    # window from the spatial dim it holds, and keep the stored order.
    windows = [window_shape[d] for d in k.stored_dims()]
    return k.replace(**{field: _pool_covariance(m, b, k.group_size, windows)
                        for field, m, b in k.arrays()})

  def mask_fn(mask, input_shape):
    # A block is padding iff every position in it is.
    mask = jnp.broadcast_to(mask, tuple(input_shape[:-1]) + mask.shape[-1:])
    blocks, inner = _blocks(mask, range(1, mask.ndim - 1), window_shape)
    return jnp.all(blocks, axis=inner)

  return make_layer("BlockAvgPool", init_fn, apply_fn, rule,
                    Requirements(diagonal_spatial=Diag.NEEDS_FULL,
                                 batch_axis=0, channel_axis=-1),
                    mask_fn)
