"""`Index` (and its helper `Slice`): NumPy basic indexing of the activations."""

from __future__ import annotations

import numbers
from typing import Any, Union

import jax
import jax.numpy as jnp

from ntcore import KernelRequirementError, Requirements, kernel_ops, make_layer

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
  """One entry per axis: an int, a slice, or a 1-d integer array
  (`kernel_ops.canonical_index` worded for this layer)."""
  return kernel_ops.canonical_index(idx, ndim, what="Index", allow_arrays=True)


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
    if not kernel_ops.selects_all(entries[c], k.shape1[c]):
      raise UnsupportedIndexError(
          f"Index({idx!r}) selects {entries[c]!r} along the channel axis "
          f"({c}); at infinite width the channels are not a finite list to "
          f"index. Use ':' for the channel axis.")
    if isinstance(entries[b], numbers.Integral):
      raise UnsupportedIndexError(
          f"Index({idx!r}) indexes the batch axis ({b}) with the integer "
          f"{entries[b]}, which would remove it; kernels always keep a batch "
          f"axis. Use a slice such as {entries[b]}:{entries[b] + 1}.")
    return k.select(entries)

  def mask_fn(mask, input_shape):
    ndim = len(input_shape)
    return kernel_ops.index_mask(mask, input_shape,
                                 canonical_index(idx, ndim), channel_axis % ndim)

  return make_layer("Index", init_fn, apply_fn, rule,
                    Requirements(batch_axis=batch_axis,
                                 channel_axis=channel_axis),
                    mask_fn)
