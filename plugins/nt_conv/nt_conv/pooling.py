"""`AvgPool` and `SumPool`: window pooling over spatial axes, finite and infinite."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import jax.numpy as jnp
from jax import lax

from ntcore import Diag, Requirements, ShapeError, make_layer

from nt_conv import _checks, _masks, _padding, _windows


def AvgPool(window_shape: Sequence[int], strides: Optional[Sequence[int]] = None,
            padding: str = "VALID", normalize_edges: bool = False,
            batch_axis: int = 0, channel_axis: int = -1):
  """Average pooling over the spatial axes.

  Args:
    window_shape: pooling window, one size per spatial axis (in order).
    strides: window strides; None for all ones.
    padding: "VALID", "SAME" or "CIRCULAR" (periodic).
    normalize_edges: divide by the number of non-padding positions in the
      window (as `jax.example_libraries.stax.AvgPool`) instead of the window
      size; matters only at SAME edges.
    batch_axis: batch axis of the inputs.
    channel_axis: channel axis of the inputs.

  Kernel (NT paper Table 1, "4D pooling"): both axes of each spatial pair
  are pooled independently,

      K'(o, o') = c(o) c(o') sum_{d, d'} K(o s - lo + d, o' s - lo + d'),

  `c = 1 / |window|` (or the edge counts); likewise the NTK. Every output
  entry reads off-diagonal input entries, so the input must be full unless
  its off-diagonal entries are zero (after `ConvLocal`); a diagonal input is
  then pooled as `c(o)^2 sum_d K(o s - lo + d, o s - lo + d)`.
  """
  return _pool("AvgPool", True, window_shape, strides, padding,
               normalize_edges, batch_axis, channel_axis)


def SumPool(window_shape: Sequence[int], strides: Optional[Sequence[int]] = None,
            padding: str = "VALID", batch_axis: int = 0, channel_axis: int = -1):
  """Sum pooling over the spatial axes; arguments as `AvgPool`.

  Kernel: `AvgPool`'s with `c = 1`,
  `K'(o, o') = sum_{d, d'} K(o s - lo + d, o' s - lo + d')`.
  """
  return _pool("SumPool", False, window_shape, strides, padding, False,
               batch_axis, channel_axis)


def _pool(name, average, window_shape, strides, padding, normalize_edges,
          batch_axis, channel_axis):
  window_shape = _checks.positive(name, "window_shape", window_shape)
  n = len(window_shape)
  strides = ((1,) * n if strides is None
             else _checks.positive(name, "strides", strides))
  if len(strides) != n:
    raise ShapeError(f"{name}: strides {strides} and window_shape "
                     f"{window_shape} have different lengths; give one "
                     "stride per window axis.")
  padding = _padding.canonical_padding(padding, name)
  shape_padding = "SAME" if padding == "CIRCULAR" else padding
  by_count = average and normalize_edges and padding == "SAME"

  def spatial(ndim):
    skip = (batch_axis % ndim, channel_axis % ndim)
    return [a for a in range(ndim) if a not in skip]

  def check_input(shape):
    rank = n + 2
    _checks.check_rank(name, shape, rank,
                       _checks.pool_layout(rank, batch_axis, channel_axis),
                       "window_shape")
    _checks.check_windows(name, "window_shape",
                          [shape[a] for a in spatial(rank)], window_shape,
                          strides, padding)

  def full_window(ndim, values):
    out = [1] * ndim
    for a, v in zip(spatial(ndim), values):
      out[a] = v
    return tuple(out)

  def init_fn(key, input_shape):
    del key
    check_input(input_shape)
    out = list(input_shape)
    for a, w, t in zip(spatial(len(input_shape)), window_shape, strides):
      out[a] = _padding.out_size(input_shape[a], w, t, shape_padding)
    return tuple(out), ()

  def apply_fn(params, inputs, **kwargs):
    del params, kwargs
    check_input(inputs.shape)
    x = inputs
    axes = spatial(x.ndim)
    if padding == "CIRCULAR":
      x = _padding.wrap(x, axes, [_padding.pads(x.shape[a], w, t, "SAME")
                                  for a, w, t in zip(axes, window_shape, strides)])
    pad = "VALID" if padding == "CIRCULAR" else padding
    dims, steps = full_window(x.ndim, window_shape), full_window(x.ndim, strides)
    out = lax.reduce_window(x, np.zeros((), x.dtype), lax.add, dims, steps, pad)
    if not average:
      return out
    if by_count:
      ones = jnp.ones([x.shape[a] if a in axes else 1 for a in range(x.ndim)],
                      x.dtype)
      return out / lax.reduce_window(ones, np.zeros((), x.dtype), lax.add,
                                     dims, steps, pad)
    return out / np.prod(window_shape)

  def rule(k, **kwargs):
    del kwargs
    check_input(k.shape1)
    check_input(k.shape2)
    stored = k.stored_dims()
    sizes = [k.shape1[a] for a in spatial(len(k.shape1))]
    sizes, window, steps = [[v[d] for d in stored]
                            for v in (sizes, window_shape, strides)]
    return k.replace(**{
        field: _pool_kernel(m, b, not k.diagonal_spatial, sizes, window,
                            steps, padding, average, by_count)
        for field, m, b in k.arrays()})

  def mask_fn(mask, input_shape):
    del input_shape
    _masks.check_channel_mask(mask, channel_axis, name)
    axes = spatial(mask.ndim)
    sizes = [mask.shape[a] for a in axes]
    return _masks.subsample(
        mask, axes, window_shape, strides,
        [_padding.pads(m, w, t, shape_padding)[0]
         for m, w, t in zip(sizes, window_shape, strides)],
        [_padding.out_size(m, w, t, shape_padding)
         for m, w, t in zip(sizes, window_shape, strides)])

  return make_layer(name, init_fn, apply_fn, rule,
                    Requirements(batch_axis=batch_axis,
                                 channel_axis=channel_axis,
                                 diagonal_spatial=Diag.NEEDS_FULL,
                                 remask=True),
                    mask_fn)


def _pool_kernel(m, batch_ndim, full, sizes, window, strides, padding, average,
                 by_count):
  """Pools every spatial axis of a kernel array (both axes of each pair)."""
  group = 2 if full else 1
  axes_of = [tuple(batch_ndim + group * i + j for j in range(group))
             for i in range(len(sizes))]
  if padding == "CIRCULAR":
    axes, widths = [], []
    for i, (n, w, t) in enumerate(zip(sizes, window, strides)):
      for a in axes_of[i]:
        axes.append(a)
        widths.append(_padding.pads(n, w, t, "SAME"))
    m = _padding.wrap(m, axes, widths)
    sizes = [m.shape[g[0]] for g in axes_of]
    padding = "VALID"
  windows = [_windows.Window((a,), w, _padding.pads(n, w, t, padding)[0], t,
                             _padding.out_size(n, w, t, padding))
             for g, n, w, t in zip(axes_of, sizes, window, strides) for a in g]
  out = _windows.window_sum(m, windows)
  if not average:
    return out
  if not by_count:
    # A diagonal kernel (zero off-diagonal entries) gets both factors too.
    return out * (1. / float(np.prod(window)) ** 2)
  scale = np.ones((), np.float64)
  for i, (n, w, t) in enumerate(zip(sizes, window, strides)):
    lo = _padding.pads(n, w, t, padding)[0]
    o = np.arange(_padding.out_size(n, w, t, padding)) * t - lo
    count = np.minimum(o + w, n) - np.maximum(o, 0)
    inv = 1. / count
    per = np.multiply.outer(inv, inv) if full else inv ** 2
    shape = [1] * out.ndim
    for a in axes_of[i]:
      shape[a] = out.shape[a]
    scale = scale * per.reshape(shape)
  return out * jnp.asarray(scale, out.dtype)
