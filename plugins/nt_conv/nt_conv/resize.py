"""`ImageResize`: `jax.image.resize` of the activations, and its kernel."""

from __future__ import annotations

from typing import Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax

from ntcore import (Diag, KernelRequirementError, Requirements, ShapeError,
                    make_layer)


ResizeMethod = jax.image.ResizeMethod
_KERNEL_METHODS = (ResizeMethod.NEAREST, ResizeMethod.LINEAR)


def _method(method: Union[str, ResizeMethod]) -> ResizeMethod:
  if isinstance(method, ResizeMethod):
    return method
  try:
    return ResizeMethod.from_string(method.lower())  # "LINEAR" as in NT's docs
  except ValueError as e:
    raise ValueError(
        f"ImageResize: unknown method {method!r}; use 'nearest' or 'linear' "
        f"(which have kernels), or 'cubic', 'lanczos3', 'lanczos5' (finite "
        f"network only).") from e


def ImageResize(shape: Sequence[int], method: Union[str, ResizeMethod],
                antialias: bool = True,
                precision: lax.Precision = lax.Precision.HIGHEST,
                batch_axis: int = 0, channel_axis: int = -1):
  """Resizes the activations with `jax.image.resize`; `-1` keeps an axis.

  Args:
    shape: the output shape, one entry per axis of the activations (batch
      and channel included); `-1` leaves that axis unchanged. The channel
      entry must be `-1` for `kernel_fn`.
    method: "nearest" or "linear" ("bilinear", "trilinear", "triangle") have
      kernels; "cubic", "lanczos3", "lanczos5" work in `apply_fn` only.
    antialias: triangle-filter when downsampling ("linear" only).
    precision: `lax.Precision` of the interpolation products.
    batch_axis: batch axis of the inputs.
    channel_axis: channel axis of the inputs.

  Kernel: both methods act on each non-channel axis separately and
  linearly, `y[o] = sum_i W[o, i] x[i]` with the same `W` for every
  channel, so `Cov(y1[o], y2[o']) = sum_{i, i'} W[o, i] Cov(x1[i], x2[i'])
  W[o', i']` — which is `jax.image.resize` of the kernel array itself, both
  members of each axis pair resized to the new size (NT does the same).
  Unlike NT, which ignores a kernel stored reversed (after an odd number
  of full-spatial convolutions) and so resizes height's pair to width's
  size and width's to height's, each pair is resized to its own axis's
  size, as the finite network resizes it.
  "nearest" is a selection, `W[o, i] = [i == floor((o + 1/2) n_in /
  n_out)]`, so it keeps diagonal layouts (diagonal spatial or batch);
  "linear" on a resized axis needs its off-diagonal covariances.

  Raises:
    NotImplementedError: from `kernel_fn` for "cubic" and "lanczos": their
      kernels have no closed form here; use `nt.monte_carlo_kernel_fn`.
    KernelRequirementError: from `kernel_fn`, if the channel axis is resized.
    ShapeError: if `shape` has the wrong length.
  """
  shape = tuple(int(s) for s in shape)
  resize_method = _method(method)
  ndim = len(shape)
  b, c = batch_axis % ndim, channel_axis % ndim
  spatial_resized = any(shape[a] != -1 for a in range(ndim)
                        if a not in (b, c))
  batch_resized = shape[b] != -1
  selection = resize_method is ResizeMethod.NEAREST

  def out_shape(input_shape):
    if len(input_shape) != ndim:
      raise ShapeError(
          f"ImageResize(shape={shape}) has {ndim} entries, but its input has "
          f"shape {tuple(input_shape)}. Give one entry per axis, -1 to keep "
          f"an axis.")
    return tuple(n if s == -1 else s for s, n in zip(shape, input_shape))

  def resize(x, new_shape):
    return jax.image.resize(x, new_shape, resize_method, antialias=antialias,
                            precision=precision)

  def init_fn(key, input_shape):
    del key
    return out_shape(input_shape), ()

  def apply_fn(params, x, **kwargs):
    del params, kwargs
    return resize(x, out_shape(x.shape))

  def rule(k, **kwargs):
    """ImageResize: `nngp' = W nngp W^T` on each axis pair (kernel resize)."""
    del kwargs
    if resize_method not in _KERNEL_METHODS:
      raise NotImplementedError(
          f"ImageResize(method={resize_method.name.lower()!r}) has no kernel: "
          f"only 'nearest' and 'linear' resizing have closed-form kernels. Use "
          f"one of those, or estimate the kernel with "
          f"nt.monte_carlo_kernel_fn(init_fn, apply_fn, key, n_samples).")
    if shape[c] not in (-1, k.shape1[c]):
      raise KernelRequirementError(
          f"ImageResize(shape={shape}) resizes the channel axis ({c}) from "
          f"{k.shape1[c]} to {shape[c]}; at infinite width the channels "
          f"cannot be interpolated. Set shape[{c}] = -1.")
    if not selection and k.diagonal_spatial and spatial_resized:
      raise KernelRequirementError(
          "ImageResize(method='linear') mixes neighbouring positions, which "
          "needs the off-diagonal spatial covariances, but its input kernel "
          "keeps only the diagonal. Leave diagonal_spatial unset.")
    if not selection and k.diagonal_batch and batch_resized:
      raise KernelRequirementError(
          "ImageResize(method='linear') along the batch axis mixes examples, "
          "which needs the off-diagonal batch covariances, but its input "
          "kernel keeps only per-example variances. Leave diagonal_batch "
          "unset.")
    new1, new2 = out_shape(k.shape1), out_shape(k.shape2)
    sp = k.stored_spatial_axes()
    sides = dict(nngp=(new1, new2), ntk=(new1, new2), cov1=(new1, new1),
                 cov2=(new2, new2))
    out = {}
    for field, mat, n_batch in k.arrays():
      first, second = sides[field]
      dims = [first[b]] + ([second[b]] if n_batch == 2 else [])
      for a in sp:
        dims += [first[a]] if k.diagonal_spatial else [first[a], second[a]]
      out[field] = resize(mat, tuple(dims))
    return k.replace(**out)

  def mask_fn(mask, input_shape):
    full = list(input_shape)
    full[c] = mask.shape[c]
    keep = (~jnp.broadcast_to(mask, full)).astype(jnp.float32)
    new = out_shape(full)
    # Masked iff no unmasked input contributes (interpolation weights are
    # nonnegative): content wins over padding, as in NT.
    return resize(keep, new) == 0

  requires = Requirements(
      batch_axis=batch_axis, channel_axis=channel_axis,
      diagonal_batch=(Diag.NEEDS_FULL if batch_resized and not selection
                      else Diag.PRESERVES),
      diagonal_spatial=(Diag.NEEDS_FULL if spatial_resized and not selection
                        else Diag.PRESERVES),
      remask=True)
  return make_layer("ImageResize", init_fn, apply_fn, rule, requires, mask_fn)
