"""Masks through kernel rules: which input positions are padding.

A mask has the shape of the finite activations (its channel axis may have
size 1). A masked position contributes nothing to any covariance, so a
layer that mixes channels (Dense) leaves exactly zero covariance there.
"""

from __future__ import annotations

import jax.numpy as jnp

from ntcore.errors import KernelRequirementError


def _has_mask(mask) -> bool:
  if isinstance(mask, (list, tuple)):
    return any(m is not None for m in mask)
  return mask is not None


def propagate(layer, mask, in_shape, out_shape):
  """The mask of a layer's output, from the mask (or list of masks) of its input."""
  if not _has_mask(mask):
    return None
  if layer.mask_fn is not None:
    return layer.mask_fn(mask, in_shape)
  if _same(in_shape, out_shape):
    return mask
  raise KernelRequirementError(
      f"{layer.name} changes the shape of its input ({in_shape} -> "
      f"{out_shape}) but does not support masked inputs. Drop "
      f"mask_constant, or mask only before layers that support masking.")


def _same(a, b) -> bool:
  if isinstance(a, list) or isinstance(b, list):
    return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b)))
  return tuple(a) == tuple(b)


def _positions(mask, batch_axis, channel_axis, is_reversed=False):
  """`(n, <spatial>)` boolean: a position is masked if all its channels are.

  Spatial axes in the kernel's order (reversed when `is_reversed`).
  """
  if mask is None:
    return None
  mask = jnp.all(mask, axis=channel_axis, keepdims=True)
  mask = jnp.moveaxis(mask, (batch_axis, channel_axis), (0, -1))[..., 0]
  if is_reversed and mask.ndim > 2:
    mask = jnp.transpose(mask, (0,) + tuple(range(mask.ndim - 1, 0, -1)))
  return mask


def _pair(pa, pb, diagonal_spatial: bool, same_batch: bool):
  """Mask of the `(pa, pb)` covariance block in the kernel's layout."""
  d = pa.ndim - 1
  if same_batch:  # diagonal batch: one batch axis
    if diagonal_spatial or d == 0:
      return pa
    a = pa.reshape(pa.shape[:1] + sum(((s, 1) for s in pa.shape[1:]), ()))
    b = pb.reshape(pb.shape[:1] + sum(((1, s) for s in pb.shape[1:]), ()))
    return a | b
  if diagonal_spatial or d == 0:
    return pa[:, None] | pb[None, :]
  a = pa.reshape(pa.shape[:1] + (1,) + sum(((s, 1) for s in pa.shape[1:]), ()))
  b = pb.reshape((1,) + pb.shape[:1] + sum(((1, s) for s in pb.shape[1:]), ()))
  return a | b


def remask(k):
  """Zeroes every covariance entry that involves a masked position."""
  if k.mask1 is None and k.mask2 is None:
    return k
  p1 = _positions(k.mask1, k.batch_axis, k.channel_axis, k.is_reversed)
  p2 = _positions(k.mask2, k.batch_axis, k.channel_axis, k.is_reversed)
  if p1 is None:
    p1 = jnp.zeros((k.shape1[k.batch_axis],) + p2.shape[1:], bool)
  if p2 is None:
    p2 = p1 if k.x1_is_x2 else jnp.zeros(
        (k.shape2[k.batch_axis],) + p1.shape[1:], bool)

  def zero(m, mask):
    return None if m is None else jnp.where(mask, jnp.zeros((), m.dtype), m)

  ds = k.diagonal_spatial
  nngp = zero(k.nngp, _pair(p1, p2, ds, False))
  ntk = None if k.ntk is None or k.ntk.ndim == 0 else zero(
      k.ntk, _pair(p1, p2, ds, False))
  cov1 = zero(k.cov1, _pair(p1, p1, ds, k.diagonal_batch))
  cov2 = zero(k.cov2, _pair(p2, p2, ds, k.diagonal_batch))
  return k.replace(nngp=nngp, ntk=k.ntk if ntk is None else ntk,
                   cov1=cov1, cov2=cov2)
