"""`Conv` and `ConvTranspose`: shared-weight convolutions, finite and infinite."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from ntcore import Diag, Kernel, Requirements, make_layer

from nt_conv import (_affine, _checks, _conv_args, _masks, _padding,
                     _windows)
from nt_conv._dims import ConvDims


def Conv(out_chan: int, filter_shape: Sequence[int],
         strides: Optional[Sequence[int]] = None, padding: str = "VALID",
         W_std: float = 1.0, b_std: Optional[float] = None,
         dimension_numbers: Optional[tuple[str, str, str]] = None,
         parameterization: str = "ntk", s: tuple[int, int] = (1, 1)):
  """General convolution (any number of spatial axes), as `lax.conv_general_dilated`.

  Args:
    out_chan: number of output channels (ignored by the NTK-parameterized
      kernel).
    filter_shape: spatial shape of the filter, in `dimension_numbers[1]`'s
      order.
    strides: window strides, same order; None for all ones.
    padding: "VALID", "SAME" (zeros) or "CIRCULAR" (periodic, SAME-sized).
    W_std: weight standard deviation.
    b_std: bias standard deviation; None for no bias, `0.` for a zero
      bias (whose standard-parameterization NTK term, 1, remains).
    dimension_numbers: `(lhs, rhs, out)` specs as in `lax.conv_general_dilated`;
      default channels-last, `('NABC', 'ABIO', 'NABC')` in 2D.
    parameterization: "ntk" (`W_std / sqrt(C |f|)` in the forward pass) or
      "standard" (in the initialization), as for `Dense`.
    s: standard parameterization's width multipliers, as for `Dense`.

  Kernel (NT paper Table 1, `A` of Novak et al. 2019): for each spatial axis
  pair `(h, h')` the covariance is averaged along the filter's diagonal,

      K'(o, o') = W_std^2 / |f| sum_d K(o s - lo + d, o' s - lo + d) + b_std^2,

  with zeros outside the input (SAME, VALID) or wrap-around (CIRCULAR); NTK
  `ntk' = W_std^2 A(ntk) + nngp'`. A diagonal-spatial kernel gives the
  diagonal output, `K'(i, i) = W_std^2 / |f| sum_d K(i + d, i + d) + b_std^2`,
  so the rule preserves diagonal blocks.
  """
  return _conv("Conv", out_chan, filter_shape, strides, padding, W_std, b_std,
               dimension_numbers, parameterization, s, transpose=False)


def ConvTranspose(out_chan: int, filter_shape: Sequence[int],
                  strides: Optional[Sequence[int]] = None,
                  padding: str = "VALID", W_std: float = 1.0,
                  b_std: Optional[float] = None,
                  dimension_numbers: Optional[tuple[str, str, str]] = None,
                  parameterization: str = "ntk", s: tuple[int, int] = (1, 1)):
  """General transposed convolution, as `lax.conv_transpose`.

  Arguments as for `Conv`. The output has `size * stride` positions per axis
  (SAME, CIRCULAR) or `size * stride + max(f - stride, 0)` (VALID).

  Kernel: `lax.conv_transpose` is a stride-1 correlation of the input dilated
  by the stride (zeros between entries) and padded by `(lo, hi)`, so on each
  axis pair

      K'(o, o') = W_std^2 / |f| sum_d Kdil(o - lo + d, o' - lo + d) + b_std^2,

  `Kdil` the covariance dilated on both axes. CIRCULAR runs VALID and folds
  each axis onto `size * stride` positions (NT's convention); NTK as `Conv`.
  """
  return _conv("ConvTranspose", out_chan, filter_shape, strides, padding,
               W_std, b_std, dimension_numbers, parameterization, s,
               transpose=True)


def _conv(name, out_chan, filter_shape, strides, padding, W_std, b_std,
          dimension_numbers, parameterization, s, transpose):
  (filter_shape, strides, padding, parameterization, dims, dn, lax_padding,
   shape_padding, width) = _conv_args.parse(
       name, out_chan, filter_shape, strides, padding, dimension_numbers,
       parameterization, s)
  check_input = _checks.conv_input_check(name, dims, filter_shape, strides,
                                         shape_padding, transpose)

  def lax_conv(x, w, pad):
    if transpose:
      return lax.conv_transpose(x, w, strides, pad, dimension_numbers=dn)
    return lax.conv_general_dilated(x, w, strides, pad, dimension_numbers=dn)

  def fan_in(shape):
    return shape[dims.channel_axis] * math.prod(filter_shape)

  def init_fn(key, input_shape):
    input_shape = tuple(input_shape)
    check_input(input_shape)
    it = iter(filter_shape)
    w_shape = tuple(width if c == "O" else input_shape[dims.channel_axis]
                    if c == "I" else next(it) for c in dims.rhs)
    out = jax.eval_shape(lambda x, w: lax_conv(x, w, shape_padding),
                         jax.ShapeDtypeStruct(input_shape, jnp.float32),
                         jax.ShapeDtypeStruct(w_shape, jnp.float32)).shape
    b_shape = (None if b_std is None
               else tuple(width if c == "C" else 1 for c in dims.out))
    if parameterization == "standard":
      # b ~ N(0, b_std^2): b_std=0. is a zero bias (NT), not a unit one;
      # None has no bias, so its factor is unused.
      scales = (W_std / (fan_in(input_shape) / s[0]) ** 0.5,
                1. if b_std is None else b_std)
    else:
      scales = 1., 1.
    return tuple(out), _affine.sample_params(key, w_shape, b_shape, *scales)

  def apply_fn(params, inputs, **kwargs):
    del kwargs
    W, b = params
    check_input(inputs.shape)
    if parameterization == "ntk":
      norm, b_scale = W_std / fan_in(inputs.shape) ** 0.5, b_std
    else:
      norm, b_scale = 1. / s[0] ** 0.5, 1.
    x = inputs
    axes = dims.input_spatial_axes()
    if padding == "CIRCULAR" and not transpose:
      x = _padding.wrap(x, axes, [
          _padding.pads(x.shape[a], f, t, "SAME")
          for a, f, t in zip(axes, filter_shape, strides)])
    out = norm * lax_conv(x, W.astype(x.dtype), lax_padding)
    if padding == "CIRCULAR" and transpose:
      for a, t in zip(dims.output_spatial_axes(), strides):
        out = _padding.fold(out, a, inputs.shape[dims.lhs.index(dims.out[a])] * t)
    return out if b is None else out + b_scale * b

  def rule(k, **kwargs):
    del kwargs
    check_input(k.shape1)
    check_input(k.shape2)
    stored = k.stored_dims()
    full = not k.diagonal_spatial
    # NT's full-spatial convolution leaves the pairs reversed (is_reversed).
    # The input is transposed, not the output: the transpose then fuses into
    # the one pass that reads the input, and every later reader of the
    # output reads it contiguously.
    flip = full and len(stored) > 1
    work = stored[::-1] if flip else stored
    f_in = dims.to_input_order(filter_shape)
    s_in = dims.to_input_order(strides)
    sizes = dims.spatial_sizes(k.shape1)
    params = [tuple(v[d] for d in work) for v in (sizes, f_in, s_in)]
    op = _transposed_op if transpose else _conv_op

    def linear(m, batch_ndim):
      if flip:
        m = Kernel.reverse_groups(m, batch_ndim, 2)
      return op(m, batch_ndim, full, *params, padding)

    out = k.replace(is_gaussian=True, batch_axis=dims.out_batch_axis,
                    channel_axis=dims.out_channel_axis,
                    **_affine.affine(k, linear, W_std=W_std, b_std=b_std,
                                     parameterization=parameterization, s=s,
                                     fan_in=fan_in(k.shape1)))
    reverse = k.is_reversed != (full and len(stored) > 0)
    return out.store(work, dims.out_permutation(), reverse)

  def mask_fn(mask, input_shape):
    mask = jnp.all(mask, axis=dims.channel_axis, keepdims=True)
    if transpose:
      w = jnp.ones(tuple(1 if c in "IO" else f for c, f in zip(
          dims.rhs, _filter_in_rhs_layout(dims, filter_shape))), jnp.float32)
      hit = lax.conv_transpose(mask.astype(jnp.float32), w, strides,
                               shape_padding, dimension_numbers=dn)
      return hit > 0
    return _masks.conv_output_mask(mask, dims, filter_shape, strides,
                                   shape_padding)

  return make_layer(name, init_fn, apply_fn, rule,
                    Requirements(batch_axis=dims.batch_axis,
                                 channel_axis=dims.channel_axis - len(dims.lhs),
                                 diagonal_spatial=Diag.PRESERVES,
                                 remask=True),
                    mask_fn)


def _filter_in_rhs_layout(dims: ConvDims, filter_shape):
  """The filter's sizes along each axis of `rhs_spec` (1 for I and O)."""
  it = iter(filter_shape)
  return [1 if c in "IO" else next(it) for c in dims.rhs]


def _groups(batch_ndim, full, i):
  return ((batch_ndim + 2 * i, batch_ndim + 2 * i + 1) if full
          else (batch_ndim + i,))


def _conv_op(m, batch_ndim, full, sizes, filt, strides, padding):
  """Mean over the filter's taps along each axis pair's diagonal."""
  if padding == "CIRCULAR":
    axes, widths = [], []
    for i, (n, f, t) in enumerate(zip(sizes, filt, strides)):
      for a in _groups(batch_ndim, full, i):
        axes.append(a)
        widths.append(_padding.pads(n, f, t, "SAME"))
    m = _padding.wrap(m, axes, widths)
    sizes = tuple(m.shape[_groups(batch_ndim, full, i)[0]]
                  for i in range(len(sizes)))
    padding = "VALID"
  windows = [_windows.Window(_groups(batch_ndim, full, i), f,
                             _padding.pads(n, f, t, padding)[0], t,
                             _padding.out_size(n, f, t, padding))
             for i, (n, f, t) in enumerate(zip(sizes, filt, strides))]
  return _windows.window_sum(m, windows) * (1. / math.prod(filt))


def _transposed_op(m, batch_ndim, full, sizes, filt, strides, padding):
  """Mean over taps of the dilated, padded covariance (see `ConvTranspose`)."""
  pad_mode = "VALID" if padding == "CIRCULAR" else padding
  axes, steps, widths, windows = [], [], [], []
  for i, (n, f, t) in enumerate(zip(sizes, filt, strides)):
    group = _groups(batch_ndim, full, i)
    for a in group:
      axes.append(a)
      steps.append(t)
      widths.append(_padding.transpose_pads(f, t, pad_mode))
    windows.append(_windows.Window(
        group, f, 0, 1, _padding.transpose_out_size(n, f, t, pad_mode)))
  m = _windows.dilate(m, axes, steps, widths)
  m = _windows.window_sum(m, windows) * (1. / math.prod(filt))
  if padding == "CIRCULAR":
    for i, (n, t) in enumerate(zip(sizes, strides)):
      for a in _groups(batch_ndim, full, i):
        m = _padding.fold(m, a, n * t)
  return m
