"""Where a `Kernel`'s spatial axis groups are stored, and reordering them.

Rules here compute in whatever order the groups are stored (window
parameters are permuted instead of the data). As in NT, a shared-weight
convolution over a full spatial covariance flips the stored order
(`is_reversed`): NT's per-pair loop leaves it reversed, and users see that
layout, so it is reproduced with one transpose of the output.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax.numpy as jnp

from ntcore import Kernel


def batch_ndim(k: Kernel, field: str) -> int:
  """Leading batch axes of array `field` (`cov1`/`cov2` may have one)."""
  return 1 if field in ("cov1", "cov2") and k.diagonal_batch else 2


def reverse_groups(m, batch_ndim: int, group: int):
  """An array with its spatial groups (of `group` axes) in reversed order."""
  n = (m.ndim - batch_ndim) // group
  order = list(range(batch_ndim)) + [batch_ndim + group * i + j
                                     for i in reversed(range(n))
                                     for j in range(group)]
  return jnp.transpose(m, order)


def permute_spatial(k: Kernel, perm: Sequence[int]) -> Kernel:
  """Output spatial group `i` is input group `perm[i]`, for every array."""
  group = 1 if k.diagonal_spatial else 2
  changes = {}
  for field in ("nngp", "ntk", "cov1", "cov2"):
    m = getattr(k, field)
    if m is None or m.ndim == 0:
      continue
    b = batch_ndim(k, field)
    order = list(range(b)) + [b + group * p + j for p in perm
                              for j in range(group)]
    changes[field] = jnp.transpose(m, order)
  return k.replace(**changes)


def stored_dims(k: Kernel) -> list[int]:
  """The activations' spatial dim of each stored group (reversed or not)."""
  dims = list(range(k.n_spatial))
  return dims[::-1] if k.is_reversed else dims


def store(k: Kernel, stored: Sequence[int], perm: Optional[Sequence[int]],
          reverse: bool) -> Kernel:
  """Lays out a rule's output whose groups hold input dims `stored`.

  Output dim `i` is input dim `perm[i]` (None: the identity); the groups are
  stored reversed iff `reverse`. At most one transpose.
  """
  n = len(stored)
  perm = list(range(n)) if perm is None else list(perm)
  targets = [perm[n - 1 - j] if reverse else perm[j] for j in range(n)]
  order = [list(stored).index(t) for t in targets]
  k = k.replace(is_reversed=reverse)
  return k if order == list(range(n)) else permute_spatial(k, order)
