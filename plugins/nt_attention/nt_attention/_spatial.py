"""Kernels as matrices over positions: the layout both layers compute in.

Attention and aggregation mix every position of an example with every other,
so their rules are matrix products over positions. A `Kernel` stores spatial
pairs interleaved (`(n1, n2, h, h', w, w')`, possibly in reversed order, or
only the diagonal); these helpers turn each array of a kernel in natural order
(`Kernel.natural()`) into `(..., S, S)` with `S = h * w`, and back.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ntcore import Kernel

FIELDS = ("nngp", "ntk", "cov1", "cov2")


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
  d = len(k.spatial_shape())
  out = {field: getattr(k, field) for field in FIELDS}
  out.update({field: to_matrix(m, b, d, k.diagonal_spatial)
              for field, m, b in k.arrays()})
  return out


def restore(k_in: Kernel, mats: dict, reversed_: bool) -> Kernel:
  """The output `Kernel` from matrices; full spatial, stored reversed iff
  `reversed_` (the input's order, as NT keeps it)."""
  shape = k_in.spatial_shape()
  changes = {}
  for field in FIELDS:
    m = mats[field]
    if m is not None and m.ndim != 0:
      m = from_matrix(m, k_in.batch_ndim(field), shape)
    changes[field] = m
  k = k_in.replace(diagonal_spatial=False, is_reversed=False, **changes)
  return k.reverse() if reversed_ else k


def both_positions(k: Kernel):
  """`(p1, p2)`, `(n, S)` booleans of a kernel in natural order: True where
  every channel of a position is masked; `(None, None)` when none is."""
  p1, p2 = k.mask_positions()
  if p1 is None:
    return None, None
  return p1.reshape(p1.shape[0], -1), p2.reshape(p2.shape[0], -1)
