"""Writing finished blocks into the whole kernel.

Each block's leaves are written where `_outputs.describe` says they belong:
PAIR leaves at `[rows, cols]` (and, above the diagonal of a symmetric
kernel, mirrored at `[cols, rows]`), ROW leaves from the first column and
COL leaves from the first row (both from the diagonal blocks of a symmetric
kernel, whose `cov2`, when a kernel function returns one, is `cov1`), CONST
leaves once. Padded
rows and columns of a ragged block are dropped here.

Concrete blocks are written in place into host (numpy) buffers. Traced
blocks (the batched function under `jax.jit`, `vmap` or `grad`) go into
`jax.numpy` buffers by `.at[...].set`, which copies the same values, so
both give the same numbers, and the traced result differentiates like the
blocks it is made of.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np

from ntcore.parallel import _outputs
from ntcore.parallel._blocks import Block, Grid


class Assembler:
  """Buffers of the whole kernel, filled block by block.

  Args:
    grid: the block grid.
    leaves: the output's leaves (`_outputs.Leaf`), in pytree order.
    shapes: each leaf's block shape and dtype (`jax.ShapeDtypeStruct`).
    pair_index: for a symmetric kernel, where each PAIR leaf sits among the
      leaves of an off-diagonal block (whose tree also holds `cov2`).
    mirror: fill blocks below the diagonal from those above it.
    traced: blocks are tracers: keep `jax.numpy` buffers, not host ones.
  """

  def __init__(self, grid: Grid, leaves: Sequence[_outputs.Leaf],
               shapes: Sequence, pair_index: dict, mirror: bool,
               traced: bool = False):
    self.grid = grid
    self.leaves = list(leaves)
    self.xp = jnp if traced else np
    self.buffers = [
        self.xp.zeros(_outputs.full_shape(l, s.shape, grid.n1, grid.n2),
                      s.dtype)
        for l, s in zip(leaves, shapes)]
    self.pair_index = pair_index
    self.mirror = mirror
    self._const_set = False

  def _set(self, t: int, index, value) -> None:
    if self.xp is np:
      self.buffers[t][index] = value
    else:
      self.buffers[t] = self.buffers[t].at[index].set(value)

  def put(self, block: Block, values: Sequence) -> None:
    """Writes one block's leaves (in its own pytree order)."""
    g = self.grid
    rows, cols = g.rows(block.i), g.cols(block.j)
    l1, l2 = rows.stop - rows.start, cols.stop - cols.start
    own_kind = block.diagonal or not g.symmetric
    for t, leaf in enumerate(self.leaves):
      if leaf.role == _outputs.PAIR:
        value = values[t] if own_kind else values[self.pair_index[t]]
        self._set(t, (rows, cols), value[:l1, :l2])
        if g.symmetric and self.mirror and block.i < block.j:
          self._set(t, (cols, rows),
                    self.xp.transpose(value, leaf.mirror)[:l2, :l1])
      elif not own_kind:
        continue
      elif leaf.role == _outputs.ROW and (block.diagonal or block.j == 0):
        self._put_along(t, values[t], leaf.axis, rows, l1)
      elif leaf.role == _outputs.COL and (block.diagonal or block.i == 0):
        self._put_along(t, values[t], leaf.axis, cols, l2)
      elif leaf.role == _outputs.CONST and not self._const_set:
        self._set(t, ..., values[t])
    if own_kind:
      self._const_set = True

  def _put_along(self, t: int, value, axis: int, where: slice,
                 length: int) -> None:
    ndim = self.buffers[t].ndim
    index = [slice(None)] * ndim
    index[axis] = where
    source = [slice(None)] * ndim
    source[axis] = slice(0, length)
    self._set(t, tuple(index), value[tuple(source)])
