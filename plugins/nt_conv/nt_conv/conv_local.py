"""`ConvLocal`: a locally connected (unshared-weight) convolution."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from ntcore import Diag, Kernel, Requirements, make_layer

from nt_conv import (_affine, _checks, _conv_args, _masks, _padding,
                     _windows)


def ConvLocal(out_chan: int, filter_shape: Sequence[int],
              strides: Optional[Sequence[int]] = None, padding: str = "VALID",
              W_std: float = 1.0, b_std: Optional[float] = None,
              dimension_numbers: Optional[tuple[str, str, str]] = None,
              parameterization: str = "ntk", s: tuple[int, int] = (1, 1)):
  """Unshared convolution: a different filter (and bias) at every output position.

  Arguments as for `Conv`. Weights have shape `(<output spatial>, C |f|,
  out_chan)` (in `dimension_numbers[1]`'s layout), as for
  `lax.conv_general_dilated_local`.

  Kernel: weights at different positions are independent, so every
  off-diagonal spatial entry is zero and the diagonal is `Conv`'s,

      K'(o, o) = W_std^2 / |f| sum_d K(o s - lo + d, o s - lo + d) + b_std^2,

  read from diagonal input entries only (likewise the NTK). As in NT the
  output is kept diagonal-spatial unless a later layer needs its (zero)
  off-diagonal entries; a full input gives a full, spatially diagonal output.
  Unlike NT, which ignores a full input stored reversed (after an odd
  number of full-spatial convolutions) and so applies the filter, strides
  and padding of one axis to another, each acts on its own axis, as in the
  finite network.
  """
  name = "ConvLocal"
  (filter_shape, strides, padding, parameterization, dims, dn, lax_padding,
   shape_padding, width) = _conv_args.parse(
       name, out_chan, filter_shape, strides, padding, dimension_numbers,
       parameterization, s)
  check_input = _checks.conv_input_check(name, dims, filter_shape, strides,
                                         shape_padding)
  size = math.prod(filter_shape)

  def fan_in(shape):
    return shape[dims.channel_axis] * size

  def output_shape(input_shape):
    check_input(input_shape)
    it = iter(filter_shape)
    w_shape = tuple(width if c == "O" else input_shape[dims.channel_axis]
                    if c == "I" else next(it) for c in dims.rhs)
    return tuple(jax.eval_shape(
        lambda x, w: lax.conv_general_dilated(x, w, strides, shape_padding,
                                              dimension_numbers=dn),
        jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32),
        jax.ShapeDtypeStruct(w_shape, jnp.float32)).shape)

  def init_fn(key, input_shape):
    out = output_shape(input_shape)
    w_shape = tuple(width if c == "O" else fan_in(input_shape) if c == "I"
                    else out[dims.out.index(c)] for c in dims.rhs)
    b_shape = (None if b_std is None
               else tuple(1 if c == "N" else out[i]
                          for i, c in enumerate(dims.out)))
    if parameterization == "standard":
      # b ~ N(0, b_std^2): b_std=0. is a zero bias (NT), not a unit one;
      # None has no bias, so its factor is unused.
      scales = (W_std / (fan_in(input_shape) / s[0]) ** 0.5,
                1. if b_std is None else b_std)
    else:
      scales = 1., 1.
    return out, _affine.sample_params(key, w_shape, b_shape, *scales)

  def apply_fn(params, inputs, **kwargs):
    del kwargs
    W, b = params
    check_input(inputs.shape)
    if parameterization == "ntk":
      norm, b_scale = W_std / fan_in(inputs.shape) ** 0.5, b_std
    else:
      norm, b_scale = 1. / s[0] ** 0.5, 1.
    x = inputs
    if padding == "CIRCULAR":
      axes = dims.input_spatial_axes()
      x = _padding.wrap(x, axes, [
          _padding.pads(x.shape[a], f, t, "SAME")
          for a, f, t in zip(axes, filter_shape, strides)])
    out = norm * lax.conv_general_dilated_local(
        x, W.astype(x.dtype), strides, lax_padding, filter_shape,
        dimension_numbers=dn)
    return out if b is None else out + b_scale * b

  def rule(k, **kwargs):
    del kwargs
    check_input(k.shape1)
    check_input(k.shape2)
    stored = k.stored_dims()
    f_in, s_in, sizes = [tuple(v[d] for d in stored) for v in (
        dims.to_input_order(filter_shape), dims.to_input_order(strides),
        dims.spatial_sizes(k.shape1))]
    full = not k.diagonal_spatial

    def linear(m, batch_ndim):
      if full:
        m = Kernel.same_positions(m, batch_ndim)
      m = _diagonal_conv(m, batch_ndim, sizes, f_in, s_in, padding)
      return Kernel.embed_same_positions(m, batch_ndim) if full else m

    def shift(m, value, batch_ndim):
      if not full:
        return m + value
      eye = Kernel.embed_same_positions(
          jnp.ones((1,) * batch_ndim + m.shape[batch_ndim::2], m.dtype),
          batch_ndim)
      return m + value * eye

    out = k.replace(is_gaussian=True, batch_axis=dims.out_batch_axis,
                    channel_axis=dims.out_channel_axis,
                    **_affine.affine(k, linear, W_std=W_std, b_std=b_std,
                                     parameterization=parameterization, s=s,
                                     fan_in=fan_in(k.shape1), shift=shift))
    return out.store(stored, dims.out_permutation(), k.is_reversed)

  def mask_fn(mask, input_shape):
    mask = jnp.all(mask, axis=dims.channel_axis, keepdims=True)
    return _masks.conv_output_mask(mask, dims, filter_shape, strides,
                                   shape_padding)

  return make_layer(name, init_fn, apply_fn, rule,
                    Requirements(batch_axis=dims.batch_axis,
                                 channel_axis=dims.channel_axis,
                                 diagonal_spatial=Diag.ZEROES_OFF_DIAGONAL,
                                 remask=True),
                    mask_fn)


def _diagonal_conv(m, batch_ndim, sizes, filt, strides, padding):
  """Mean over the filter's taps of same-position entries `(B, <spatial>)`."""
  axes = [batch_ndim + i for i in range(len(sizes))]
  if padding == "CIRCULAR":
    m = _padding.wrap(m, axes, [_padding.pads(n, f, t, "SAME")
                                for n, f, t in zip(sizes, filt, strides)])
    sizes = [m.shape[a] for a in axes]
    padding = "VALID"
  windows = [_windows.Window((a,), f, _padding.pads(n, f, t, padding)[0], t,
                             _padding.out_size(n, f, t, padding))
             for a, n, f, t in zip(axes, sizes, filt, strides)]
  return _windows.window_sum(m, windows) * (1. / math.prod(filt))
