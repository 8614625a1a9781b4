"""`Index` (and its helper `Slice`): NumPy basic indexing of the activations."""

from __future__ import annotations

import numbers
from typing import Any, Union

import jax
import jax.numpy as jnp
import numpy as np

from ntcore import KernelRequirementError, Requirements, ShapeError, make_layer

from nt_conv import _kernel_order

SliceType = Union[int, slice, type(Ellipsis), tuple]


class UnsupportedIndexError(KernelRequirementError, NotImplementedError):
  """An index with no infinite-width kernel (channels, or an integer batch
  index). Also a `NotImplementedError`, which is what NT raises here."""


class _Slice:
  """Spells an `Index` argument: `Slice[1:10, :, ::-1]`.

  Python has no literal for `1:10, :, ::-1` outside brackets, so
  `Slice[...]` returns what it is indexed with:
  `(slice(1, 10), slice(None), slice(None, None, -1))`.
  """

  def __getitem__(self, idx: SliceType) -> SliceType:
    return idx

  def __repr__(self):
    return "Slice"


Slice = _Slice()


def canonical_index(idx: Any, ndim: int) -> tuple:
  """One entry per axis: an int, a slice, or a 1-d integer array.

  `Ellipsis` expands to full slices, missing trailing axes are full slices.

  Raises:
    ShapeError: for `None` (new axes), boolean or multi-dimensional arrays,
      more than one array (NumPy would then zip them, not index each axis),
      or more entries than axes.
  """
  idx = idx if isinstance(idx, tuple) else (idx,)
  if sum(i is Ellipsis for i in idx) > 1:
    raise ShapeError(f"Index {idx!r} has more than one '...'.")
  out = []
  for i in idx:
    if i is Ellipsis:
      out += [slice(None)] * (ndim - (len(idx) - 1))
    elif i is None:
      raise ShapeError(
          f"Index {idx!r} contains None (a new axis); Index only selects "
          f"entries. Add axes with a reshape outside the network instead.")
    elif isinstance(i, (slice, numbers.Integral)):
      out.append(int(i) if isinstance(i, numbers.Integral) else i)
    else:
      arr = np.asarray(i)
      if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(
            f"Index {idx!r}: each entry must be an int, a slice, '...' or a "
            f"1-d sequence of ints, got {i!r}.")
      out.append(arr)
  if len(out) > ndim:
    raise ShapeError(f"Index {idx!r} has {len(out)} entries but the "
                     f"activations have only {ndim} axes.")
  out += [slice(None)] * (ndim - len(out))
  if sum(isinstance(i, np.ndarray) for i in out) > 1:
    raise ShapeError(
        f"Index {idx!r} indexes more than one axis with a sequence; NumPy "
        f"would pair those sequences up rather than index each axis. Use "
        f"slices, or one sequence.")
  return tuple(out)


def _take(mat, position: int, i):
  """Indexes axis `position` of `mat` with one canonical entry `i`."""
  if isinstance(i, np.ndarray):
    return jnp.take(mat, jnp.asarray(i), axis=position)
  return mat[(slice(None),) * position + (i,)]


def _index_axes(mat, entries) -> jnp.ndarray:
  """Indexes each axis of `mat` by its own entry (outer, not NumPy zipping)."""
  for position in reversed(range(len(entries))):  # ints drop axes: go backwards
    if not (isinstance(entries[position], slice)
            and entries[position] == slice(None)):
      mat = _take(mat, position, entries[position])
  return mat


def _selects_all(entry, size: int) -> bool:
  """Whether `entry` keeps every position of an axis of `size`, in order."""
  if isinstance(entry, numbers.Integral):
    return False
  return np.array_equal(np.arange(size)[entry], np.arange(size))


def Index(idx: SliceType, batch_axis: int = 0, channel_axis: int = -1):
  """Indexes the activations like `x[idx]` (NumPy basic indexing).

  Build `idx` with `Slice`, e.g. `Index(Slice[:, ::2, 1:5])`.

  Args:
    idx: ints, slices, `...`, or one 1-d sequence of ints, one per axis.
    batch_axis: batch axis of the inputs.
    channel_axis: channel axis of the inputs.

  Kernel: indexing is a selection, `y[o] = x[i(o)]` on every non-channel
  axis, so `nngp'[a, b, o, o'] = nngp[i_b(a), i_b(b), i(o), i(o')]` — each
  kernel axis indexed by the index of its finite axis (both batch axes by
  the batch index, both members of a spatial pair by that axis's index).
  Diagonal blocks map to diagonal blocks, so diagonal batch/spatial layouts
  are kept, and so is the stored order of the spatial groups
  (`is_reversed`), as in NT. An integer drops its axis (spatial only).

  Raises:
    KernelRequirementError: from `kernel_fn`, if `idx` selects part of the
      channel axis (its width is infinite) or indexes the batch axis with an
      integer (the kernel always keeps a batch axis; use `Slice[3:4]`).
    ShapeError: for indices that are not basic (see `canonical_index`).
  """
  def init_fn(key, input_shape):
    del key
    entries = canonical_index(idx, len(input_shape))
    out = jax.eval_shape(lambda x: x[entries],
                         jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
    return out.shape, ()

  def apply_fn(params, x, **kwargs):
    del params, kwargs
    return x[canonical_index(idx, x.ndim)]

  def rule(k, **kwargs):
    """Index: `nngp'[a, b, o, o'] = nngp[i_b(a), i_b(b), i(o), i(o')]`."""
    del kwargs
    ndim = len(k.shape1)
    entries = canonical_index(idx, ndim)
    b, c = k.batch_axis, k.channel_axis
    if not _selects_all(entries[c], k.shape1[c]):
      raise UnsupportedIndexError(
          f"Index({idx!r}) selects {entries[c]!r} along the channel axis "
          f"({c}); at infinite width the channels are not a finite list to "
          f"index. Use ':' for the channel axis.")
    if isinstance(entries[b], numbers.Integral):
      raise UnsupportedIndexError(
          f"Index({idx!r}) indexes the batch axis ({b}) with the integer "
          f"{entries[b]}, which would remove it; kernels always keep a batch "
          f"axis. Use a slice such as {entries[b]}:{entries[b] + 1}.")
    spatial = [entries[a] for a in _kernel_order.stored_spatial_axes(k)]
    group = 1 if k.diagonal_spatial else 2
    spatial_entries = [e for e in spatial for _ in range(group)]
    out = {}
    for field, mat, n_batch in _kernel_order.arrays(k):
      out[field] = _index_axes(mat, [entries[b]] * n_batch + spatial_entries)

    def shift(axis):  # integer entries before `axis` remove axes
      return axis - sum(isinstance(e, numbers.Integral) for e in entries[:axis])

    return k.replace(batch_axis=shift(b), channel_axis=shift(c), **out)

  def mask_fn(mask, input_shape):
    ndim = len(input_shape)
    c = channel_axis % ndim
    entries = list(canonical_index(idx, ndim))
    shape = list(input_shape)
    shape[c] = mask.shape[c]
    if mask.shape[c] == 1:  # one mask for all channels
      integer = isinstance(entries[c], numbers.Integral)
      entries[c] = 0 if integer else slice(None)
    return jnp.broadcast_to(mask, shape)[tuple(entries)]

  return make_layer("Index", init_fn, apply_fn, rule,
                    Requirements(batch_axis=batch_axis,
                                 channel_axis=channel_axis),
                    mask_fn)
