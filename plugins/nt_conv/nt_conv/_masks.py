"""Masks of finite activations through window layers, and their kernel layout.

A mask has the shape of the activations (its channel axis may have size 1);
True marks padding. A window layer's output position is padding iff the
input position at its window's centre is (NT's convention), so masks are
subsampled, never pooled.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from jax import lax

from nt_conv import _padding


def check_channel_mask(mask, channel_axis: int, layer: str) -> None:
  """Pooling takes one mask per position, not per channel (as NT)."""
  if mask.shape[channel_axis] != 1:
    raise NotImplementedError(
        f"{layer} got a mask that differs between channels (mask shape "
        f"{tuple(mask.shape)}); pooling supports only masks shared by all "
        f"channels of a position. Mask whole positions (all channels equal "
        f"to mask_constant).")


def subsample(mask, axes: Sequence[int], window: Sequence[int],
              strides: Sequence[int], lo: Sequence[int], out: Sequence[int]):
  """Keeps, for each output position, the mask at its window's centre."""
  start, limit, step = [0] * mask.ndim, list(mask.shape), [1] * mask.ndim
  for a, f, s, l, o in zip(axes, window, strides, lo, out):
    start[a] = -l + (f - 1) // 2
    limit[a] = start[a] + (o - 1) * s + 1
    step[a] = s
  return lax.slice(mask, start, limit, step)



def conv_output_mask(mask, dims, filter_shape, strides, padding: str):
  """The mask of a (shared or local) convolution's outputs, in output order.

  An output position is masked when the window's anchor input is (the
  channel-reduced `mask` subsampled at each window's first tap), as in NT.
  `dims` is the layer's `ConvDims`.
  """
  axes = dims.input_spatial_axes()
  sizes = [mask.shape[a] for a in axes]
  mask = subsample(
      mask, axes, filter_shape, strides,
      [_padding.pads(n, f, t, padding)[0]
       for n, f, t in zip(sizes, filter_shape, strides)],
      [_padding.out_size(n, f, t, padding)
       for n, f, t in zip(sizes, filter_shape, strides)])
  return jnp.transpose(mask, [dims.lhs.index(c) for c in dims.out])
