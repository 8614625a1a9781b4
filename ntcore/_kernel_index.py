"""Selecting and permuting a `Kernel`'s activations: `k[idx]`, `slice`, `transpose`.

Each finite axis of the activations owns some axes of the kernel arrays:
the batch axis owns the batch axes (two in `nngp`, one or two in `cov1`),
a spatial axis owns its group (`(s, s')`, or `(s,)` when diagonal), and the
channel axis owns none. Selecting entries of a finite axis selects them on
every kernel axis it owns: `nngp'[a, b, o, o'] = nngp[i(a), i(b), j(o), j(o')]`.
Groups are stored in reverse when `is_reversed`.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np

from ntcore import _layout
from ntcore.errors import KernelRequirementError, ShapeError


def _is_int(i) -> bool:
  return isinstance(i, numbers.Integral) and not isinstance(i, bool)


def canonical_index(idx, ndim: int, what: str = "Kernel index",
                    allow_arrays: bool = False) -> tuple:
  """`idx` as one entry per axis: `...` expanded, missing axes full slices.

  Entries are ints and slices, and with `allow_arrays` one 1-d integer
  array (selecting those positions of its axis, in that order). `what`
  names the index in messages (`"Index"` for the layer).

  Raises:
    ShapeError: for `None` (new axes), booleans, arrays (unless allowed:
      then only one, 1-d and integer), two `...`, or more entries than axes.
  """
  idx = idx if isinstance(idx, tuple) else (idx,)
  allowed = ("an int, a slice, '...' or one 1-d sequence of ints"
             if allow_arrays else "an int, a slice or '...'")
  if sum(i is Ellipsis for i in idx) > 1:
    raise ShapeError(f"{what} {idx!r} has more than one '...'.")
  out = []
  for i in idx:
    if i is Ellipsis:
      out += [slice(None)] * (ndim - (len(idx) - 1))
    elif i is None:
      raise ShapeError(
          f"{what} {idx!r} contains None (a new axis), but each entry must be "
          f"{allowed}: an index only selects entries. Add axes with a "
          f"reshape outside the network instead.")
    elif _is_int(i):
      out.append(int(i))
    elif isinstance(i, slice):
      out.append(i)
    else:
      arr = np.asarray(i) if allow_arrays else None
      if arr is None or arr.ndim != 1 or not np.issubdtype(arr.dtype,
                                                           np.integer):
        raise ShapeError(
            f"{what} {idx!r}: each entry must be {allowed}, got {i!r}. For "
            f"other selections index the inputs before computing the kernel.")
      out.append(arr)
  if len(out) > ndim:
    raise ShapeError(f"{what} {idx!r} has {len(out)} entries but the "
                     f"activations have only {ndim} axes.")
  out += [slice(None)] * (ndim - len(out))
  if sum(isinstance(i, np.ndarray) for i in out) > 1:
    raise ShapeError(
        f"{what} {idx!r} indexes more than one axis with a sequence; NumPy "
        f"would pair those sequences up rather than index each axis. Use "
        f"slices, or one sequence.")
  return tuple(out)


def selects_all(entry, size: int) -> bool:
  """Whether `entry` keeps every position of an axis of `size`, in order."""
  if _is_int(entry):
    return False
  return np.array_equal(np.arange(size)[entry], np.arange(size))


def _take(mat, position: int, i):
  """Indexes axis `position` of `mat` with one canonical entry `i`."""
  if isinstance(i, np.ndarray):
    return jnp.take(mat, jnp.asarray(i), axis=position)
  return mat[(slice(None),) * position + (i,)]


def index_axes(mat, entries):
  """Indexes each axis of `mat` by its own entry (outer, not NumPy zipping)."""
  for position in reversed(range(len(entries))):  # ints drop axes: go backwards
    if not (isinstance(entries[position], slice)
            and entries[position] == slice(None)):
      mat = _take(mat, position, entries[position])
  return mat


def _size(n: int, entry) -> Optional[int]:
  """Size of an axis of `n` after `entry`; None when an int removes it."""
  if isinstance(entry, np.ndarray):
    return len(entry)
  return None if _is_int(entry) else len(range(n)[entry])


def _shape(shape: tuple, entries) -> tuple:
  sizes = (_size(n, e) for n, e in zip(shape, entries))
  return tuple(s for s in sizes if s is not None)


def index_mask(mask, shape, entries, channel_axis: int):
  """`mask[entries]`, the mask first broadcast to the full `shape`."""
  if mask is None:
    return None
  full = list(shape)
  full[channel_axis] = mask.shape[channel_axis]
  entries = list(entries)
  if mask.shape[channel_axis] == 1:
    entries[channel_axis] = 0 if _is_int(entries[channel_axis]) else slice(None)
  return jnp.broadcast_to(mask, full)[tuple(entries)]


def getitem(k, idx, allow_arrays: bool = False):
  """`k[idx]`: the kernel of `x1[idx]`, `x2[idx]` (see `Kernel.select`)."""
  ndim = len(k.shape1)
  entries = canonical_index(idx, ndim, allow_arrays=allow_arrays)
  b, c = k.batch_axis, k.channel_axis
  channel = entries[c]
  if not selects_all(channel, k.shape1[c]):
    raise KernelRequirementError(
        f"Kernel index {idx!r} selects {channel!r} along the channel axis "
        f"({c}); at infinite width every channel is alike and none can be "
        f"picked out. Use ':' for axis {c}.")
  if _is_int(entries[b]):
    raise KernelRequirementError(
        f"Kernel index {idx!r} indexes the batch axis ({b}) with the integer "
        f"{entries[b]}, which would remove it; a kernel always keeps its "
        f"batch axis. Use a slice such as {entries[b]}:{entries[b] + 1}.")
  spatial = [entries[a] for a in _layout.stored_spatial_axes(k)
             for _ in range(_layout.group_size(k))]
  out = {field: index_axes(mat, [entries[b]] * n_batch + spatial)
         for field, mat, n_batch in _layout.arrays(k)}

  def shift(axis):  # integer entries before `axis` remove axes
    return axis - sum(_is_int(e) for e in entries[:axis])

  return k.replace(
      **out, batch_axis=shift(b), channel_axis=shift(c),
      shape1=_shape(k.shape1, entries), shape2=_shape(k.shape2, entries),
      mask1=index_mask(k.mask1, k.shape1, entries, c),
      mask2=index_mask(k.mask2, k.shape2, entries, c))


def _batch_slice(mat, n_batch: int, s):
  return mat[(s,) * n_batch] if n_batch == 1 else mat[s][:, s]


def slice_batches(k, n1_slice, n2_slice):
  """`k.slice(n1_slice, n2_slice)`: the kernel of `x1[n1_slice]`, `x2[n2_slice]`."""
  for s in (n1_slice, n2_slice):
    if not isinstance(s, slice):
      raise ShapeError(
          f"Kernel.slice takes two slice objects (e.g. slice(0, 8)), got "
          f"{s!r}. For other selections use k[...] or index the inputs.")
  same = k.x1_is_x2 and n1_slice == n2_slice
  n_cov = 1 if k.diagonal_batch else 2
  cov2 = k.cov1 if k.cov2 is None else k.cov2
  b = k.batch_axis

  def pair(mat):
    if mat is None or mat.ndim == 0:
      return mat
    return mat[n1_slice, n2_slice]

  def batch_mask(mask, s):
    if mask is None or mask.shape[b] == 1:
      return mask
    return mask[(slice(None),) * b + (s,)]

  mask2 = k.mask1 if k.mask2 is None and k.x1_is_x2 else k.mask2
  nngp = pair(k.nngp)
  shape1, shape2 = list(k.shape1), list(k.shape2)
  shape1[b], shape2[b] = nngp.shape[0], nngp.shape[1]
  return k.replace(
      nngp=nngp, ntk=pair(k.ntk),
      cov1=_batch_slice(k.cov1, n_cov, n1_slice),
      cov2=None if same else _batch_slice(cov2, n_cov, n2_slice),
      x1_is_x2=same, shape1=tuple(shape1), shape2=tuple(shape2),
      mask1=batch_mask(k.mask1, n1_slice),
      mask2=None if same else batch_mask(mask2, n2_slice))


def transpose(k, axes: Optional[Sequence[int]] = None):
  """`k.transpose(axes)`: stored spatial group `j` becomes old group `axes[j]`."""
  stored = _layout.stored_spatial_axes(k)
  n = len(stored)
  axes = tuple(range(n)) if axes is None else tuple(int(a) for a in axes)
  if sorted(a % n if n else a for a in axes) != list(range(n)) or len(axes) != n:
    raise ShapeError(
        f"Kernel.transpose(axes={axes}): axes must be a permutation of the "
        f"{n} spatial axes, i.e. of {tuple(range(n))} (the batch and channel "
        f"axes are not included).")
  axes = tuple(a % n for a in axes)
  group = _layout.group_size(k)
  out = {}
  for field, mat, n_batch in _layout.arrays(k):
    order = list(range(n_batch)) + [n_batch + group * a + j for a in axes
                                    for j in range(group)]
    out[field] = jnp.transpose(mat, order)
  # The activations' permutation: axis stored[j] now holds old stored[axes[j]].
  perm = list(range(len(k.shape1)))
  for j, a in enumerate(axes):
    perm[stored[j]] = stored[a]

  def permute(shape):
    return tuple(shape[p] for p in perm)

  def permute_mask(mask):
    return None if mask is None else jnp.transpose(mask, perm)

  return k.replace(**out, shape1=permute(k.shape1), shape2=permute(k.shape2),
                   mask1=permute_mask(k.mask1), mask2=permute_mask(k.mask2))
