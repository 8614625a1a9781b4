"""How a `Kernel`'s arrays are laid out, and moving between layouts.

Every array holds its batch axes first (`nngp`, `ntk`: two; `cov1`, `cov2`:
one when `diagonal_batch`, else two), then one group per spatial axis of the
finite activations: `(s, s')` when spatial covariances are full, `(s,)` when
only same-position pairs are kept. Groups are stored in the activations'
order, or last axis first when `is_reversed`. The channel axis owns no array
axis. These functions take the kernel as an argument (they are the bodies of
`Kernel`'s layout methods) and import nothing of `ntcore`, so `kernel.py`
can import them at module level.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import jax.numpy as jnp
import numpy as np

Array = Any
FIELDS = ("nngp", "ntk", "cov1", "cov2")


def batch_ndim(k, field: str) -> int:
  """Leading batch axes of array `field`: one for a diagonal-batch `cov1`/`cov2`."""
  return 1 if field in ("cov1", "cov2") and k.diagonal_batch else 2


def group_size(k) -> int:
  """Array axes per spatial axis: 2 (full pairs) or 1 (same positions only)."""
  return 1 if k.diagonal_spatial else 2


def arrays(k) -> Iterator[tuple[str, Array, int]]:
  """`(field, array, batch_ndim)` for each covariance array that has axes.

  A `None` array and a 0-d `ntk` (zero: no parameters met yet) are skipped.
  """
  for field in FIELDS:
    mat = getattr(k, field)
    if mat is not None and mat.ndim > 0:
      yield field, mat, batch_ndim(k, field)


def natural_spatial_axes(k) -> list[int]:
  """The activations' axes that are neither batch nor channel, in order."""
  return [a for a in range(len(k.shape1))
          if a not in (k.batch_axis, k.channel_axis)]


def stored_spatial_axes(k) -> list[int]:
  """The activations' spatial axis held by each stored group, in stored order."""
  axes = natural_spatial_axes(k)
  return axes[::-1] if k.is_reversed else axes


def stored_dims(k) -> list[int]:
  """The spatial dim (0 = first spatial axis) held by each stored group."""
  dims = list(range(len(natural_spatial_axes(k))))
  return dims[::-1] if k.is_reversed else dims


def spatial_shape(k) -> tuple[int, ...]:
  """Spatial sizes of the activations of `x1`, in their natural order."""
  return tuple(k.shape1[a] for a in natural_spatial_axes(k))


def reverse_groups(m: Array, batch_ndim_: int, group: int) -> Array:
  """`m` with its spatial groups (of `group` axes each) in reversed order."""
  n = (m.ndim - batch_ndim_) // group
  order = list(range(batch_ndim_)) + [batch_ndim_ + group * i + j
                                      for i in reversed(range(n))
                                      for j in range(group)]
  return jnp.transpose(m, order)


def permute_groups(k, perm: Sequence[int]):
  """`k` whose stored group `i` is the input's stored group `perm[i]`.

  Only the arrays move; the caller states what the groups now hold.
  """
  group = group_size(k)
  changes = {}
  for field, m, b in arrays(k):
    order = list(range(b)) + [b + group * p + j for p in perm
                              for j in range(group)]
    changes[field] = jnp.transpose(m, order)
  return k.replace(**changes)


def reverse(k):
  """`k` with its groups stored in the other order; `is_reversed` flips."""
  if len(natural_spatial_axes(k)) < 2:
    return k.replace(is_reversed=not k.is_reversed)
  group = group_size(k)
  changes = {field: reverse_groups(m, b, group) for field, m, b in arrays(k)}
  return k.replace(is_reversed=not k.is_reversed, **changes)


def natural(k):
  """`k` with its groups in the activations' order (`is_reversed=False`)."""
  return reverse(k) if k.is_reversed else k


def store(k, stored: Sequence[int], perm: Optional[Sequence[int]],
          reversed_: bool):
  """Lays out a rule's output whose stored groups hold input dims `stored`.

  Output dim `i` is input dim `perm[i]` (None: the identity), and the groups
  are stored reversed iff `reversed_`. At most one transpose.
  """
  n = len(stored)
  perm = list(range(n)) if perm is None else list(perm)
  targets = [perm[n - 1 - j] if reversed_ else perm[j] for j in range(n)]
  order = [list(stored).index(t) for t in targets]
  k = k.replace(is_reversed=reversed_)
  return k if order == list(range(n)) else permute_groups(k, order)


def same_positions(m: Array, batch_ndim_: int) -> Array:
  """`(B, h, h', w, w')` -> `(B, h, w)`: the same-position (diagonal) entries."""
  for start in range(batch_ndim_, batch_ndim_ + (m.ndim - batch_ndim_) // 2):
    m = jnp.moveaxis(jnp.diagonal(m, axis1=start, axis2=start + 1), -1, start)
  return m


def embed_same_positions(d: Array, batch_ndim_: int) -> Array:
  """`(B, h, w)` -> `(B, h, h', w, w')`, zero off the spatial diagonal."""
  sizes = d.shape[batch_ndim_:]
  out = d.reshape(d.shape[:batch_ndim_] + sum(((n, 1) for n in sizes), ()))
  for i, n in enumerate(sizes):
    eye = np.eye(n, dtype=bool).reshape(
        (1,) * (batch_ndim_ + 2 * i) + (n, n) + (1,) * (2 * (len(sizes) - i - 1)))
    out = jnp.where(eye, out, jnp.zeros((), d.dtype))
  return out


def variances(cov: Array, diagonal_batch: bool, diagonal_spatial: bool,
              n_spatial: int) -> Array:
  """Per-example, per-position variances `(n, <spatial>)` from `cov1`/`cov2`."""
  del n_spatial  # implied by the array's rank
  if not diagonal_batch:
    cov = jnp.moveaxis(jnp.diagonal(cov, axis1=0, axis2=1), -1, 0)
  if not diagonal_spatial:
    cov = same_positions(cov, 1)
  return cov


def pair(var_a: Array, var_b: Array, diagonal_spatial: bool,
         one_batch_axis: bool) -> tuple[Array, Array]:
  """Broadcasts two per-position arrays `(n, <spatial>)` to a covariance layout.

  Returns `(a, b)` such that `a * b` (or `a | b` for masks) has the layout of
  the covariance between the two batches: `(n_a, n_b, ...)`, or `(n, ...)`
  with `one_batch_axis` (a diagonal-batch `cov1`); spatial axes interleaved
  unless `diagonal_spatial`.
  """
  if diagonal_spatial or var_a.ndim == 1:
    if one_batch_axis:
      return var_a, var_b
    return var_a[:, None], var_b[None, :]
  inter_a = sum(((s, 1) for s in var_a.shape[1:]), ())
  inter_b = sum(((1, s) for s in var_b.shape[1:]), ())
  if one_batch_axis:
    return (var_a.reshape(var_a.shape[:1] + inter_a),
            var_b.reshape(var_b.shape[:1] + inter_b))
  return (var_a.reshape(var_a.shape[:1] + (1,) + inter_a),
          var_b.reshape((1,) + var_b.shape[:1] + inter_b))


def _positions(mask, k):
  """`(n, <spatial as stored>)`: True where every channel of a position is masked."""
  if mask is None:
    return None
  mask = jnp.all(mask, axis=k.channel_axis, keepdims=True)
  mask = jnp.moveaxis(mask, (k.batch_axis, k.channel_axis), (0, -1))[..., 0]
  if k.is_reversed and mask.ndim > 2:
    mask = jnp.transpose(mask, (0,) + tuple(range(mask.ndim - 1, 0, -1)))
  return mask


def mask_positions(k):
  """`(p1, p2)`: masked positions of both batches, `(n, <spatial as stored>)`.

  `(None, None)` when nothing is masked; otherwise the batch without a mask
  gets an all-False one (`p2` is `p1` when `x2` is `x1`).
  """
  p1, p2 = _positions(k.mask1, k), _positions(k.mask2, k)
  if p1 is None and p2 is None:
    return None, None
  if p1 is None:
    p1 = jnp.zeros((k.shape1[k.batch_axis],) + p2.shape[1:], bool)
  if p2 is None:
    p2 = p1 if k.x1_is_x2 else jnp.zeros(
        (k.shape2[k.batch_axis],) + p1.shape[1:], bool)
  return p1, p2


def remask(k):
  """Zeroes every covariance entry that involves a masked position."""
  p1, p2 = mask_positions(k)
  if p1 is None:
    return k
  ds = k.diagonal_spatial

  def zero(m, pa, pb, one_batch_axis):
    if m is None or m.ndim == 0:
      return m
    a, b = pair(pa, pb, ds, one_batch_axis)
    return jnp.where(a | b, jnp.zeros((), m.dtype), m)

  return k.replace(nngp=zero(k.nngp, p1, p2, False),
                   ntk=zero(k.ntk, p1, p2, False),
                   cov1=zero(k.cov1, p1, p1, k.diagonal_batch),
                   cov2=zero(k.cov2, p2, p2, k.diagonal_batch))
