"""Kernels as matrices over positions: the layout both layers compute in.

Attention and aggregation mix every position of an example with every other,
so their rules are matrix products over positions. A `Kernel` stores spatial
pairs interleaved (`(n1, n2, h, h', w, w')`, possibly in reversed order, or
only the diagonal); these helpers turn each array into `(..., S, S)` with
`S = h * w` in the activations' natural order, and back.
"""

from __future__ import annotations

import math
from typing import Optional

import jax.numpy as jnp

from ntcore import Kernel, kernel_ops

FIELDS = ("nngp", "ntk", "cov1", "cov2")


def batch_ndim(k: Kernel, field: str) -> int:
  """Leading batch axes of `field`: one for a diagonal-batch `cov1`/`cov2`."""
  return 1 if field in ("cov1", "cov2") and k.diagonal_batch else 2


def spatial_shape(k: Kernel) -> tuple[int, ...]:
  """Spatial sizes of the activations, in their natural order."""
  return tuple(n for a, n in enumerate(k.shape1)
               if a not in (k.batch_axis, k.channel_axis))


def natural(k: Kernel) -> Kernel:
  """`k` with its spatial groups in natural (not reversed) order."""
  return kernel_ops.reverse_spatial(k) if k.is_reversed else k


def to_matrix(m, b: int, d: int, diagonal: bool):
  """`(<b batch>, h, h', w, w')` (or `(<b batch>, h, w)`) -> `(<b>, S, S)`.

  A diagonal-spatial array (only possible when its off-diagonal entries are
  zero, after `ConvLocal`) becomes the diagonal matrix it stands for.
  """
  batch = m.shape[:b]
  if diagonal:
    flat = m.reshape(batch + (-1,))
    return flat[..., :, None] * jnp.eye(flat.shape[-1], dtype=m.dtype)
  order = (tuple(range(b)) + tuple(b + 2 * i for i in range(d))
           + tuple(b + 2 * i + 1 for i in range(d)))
  size = math.prod(m.shape[b::2]) if d else 1
  return jnp.transpose(m, order).reshape(batch + (size, size))


def from_matrix(m, b: int, shape: tuple[int, ...]):
  """`(<b batch>, S, S)` -> `(<b batch>, h, h', w, w')` (undoes `to_matrix`)."""
  d = len(shape)
  m = m.reshape(m.shape[:b] + tuple(shape) * 2)
  order = tuple(range(b)) + sum(((b + i, b + d + i) for i in range(d)), ())
  return jnp.transpose(m, order)


def matrices(k: Kernel) -> dict:
  """Every covariance of `k` (in natural order) as `(..., S, S)`; a 0-d NTK
  (no parameters yet) stays 0-d."""
  d = len(spatial_shape(k))
  out = {}
  for field in FIELDS:
    m = getattr(k, field)
    if m is None or m.ndim == 0:
      out[field] = m
    else:
      out[field] = to_matrix(m, batch_ndim(k, field), d, k.diagonal_spatial)
  return out


def restore(k_in: Kernel, mats: dict, reversed_: bool) -> Kernel:
  """The output `Kernel` from matrices; full spatial, stored reversed iff
  `reversed_` (the input's order, as NT keeps it)."""
  shape = spatial_shape(k_in)
  changes = {}
  for field in FIELDS:
    m = mats[field]
    if m is not None and m.ndim != 0:
      m = from_matrix(m, batch_ndim(k_in, field), shape)
    changes[field] = m
  k = k_in.replace(diagonal_spatial=False, is_reversed=False, **changes)
  return kernel_ops.reverse_spatial(k) if reversed_ else k


def positions(mask, k: Kernel) -> Optional[jnp.ndarray]:
  """`(n, S)` boolean, natural order: True where every channel is masked."""
  if mask is None:
    return None
  mask = jnp.all(mask, axis=k.channel_axis, keepdims=True)
  mask = jnp.moveaxis(mask, (k.batch_axis, k.channel_axis), (0, -1))
  return mask.reshape(mask.shape[0], -1)


def both_positions(k: Kernel):
  """`(p1, p2)`: position masks of both batches, or `(None, None)`."""
  p1, p2 = positions(k.mask1, k), positions(k.mask2, k)
  if p1 is None and p2 is None:
    return None, None
  size = math.prod(spatial_shape(k))
  if p1 is None:
    p1 = jnp.zeros((k.shape1[k.batch_axis], size), bool)
  if p2 is None:
    p2 = p1 if k.x1_is_x2 else jnp.zeros((k.shape2[k.batch_axis], size), bool)
  return p1, p2
