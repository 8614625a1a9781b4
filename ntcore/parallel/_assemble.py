"""Writing finished blocks into the whole kernel (host arrays).

Each block's leaves are written where `_outputs.describe` says they belong:
PAIR leaves at `[rows, cols]` (and, above the diagonal of a symmetric
kernel, mirrored at `[cols, rows]`), ROW leaves from the first column or
the diagonal, COL leaves from the first row, CONST leaves once. Padded
rows and columns of a ragged block are dropped here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ntcore.parallel import _outputs
from ntcore.parallel._blocks import Block, Grid


class Assembler:
  """Host buffers of the whole kernel, filled block by block.

  Args:
    grid: the block grid.
    leaves: the output's leaves (`_outputs.Leaf`), in pytree order.
    shapes: each leaf's block shape and dtype (`jax.ShapeDtypeStruct`).
    pair_index: for a symmetric kernel, where each PAIR leaf sits among the
      leaves of an off-diagonal block (whose tree also holds `cov2`).
    mirror: fill blocks below the diagonal from those above it.
  """

  def __init__(self, grid: Grid, leaves: Sequence[_outputs.Leaf],
               shapes: Sequence, pair_index: dict, mirror: bool):
    self.grid = grid
    self.leaves = list(leaves)
    self.buffers = [
        np.zeros(_outputs.full_shape(l, s.shape, grid.n1, grid.n2), s.dtype)
        for l, s in zip(leaves, shapes)]
    self.pair_index = pair_index
    self.mirror = mirror
    self._const_set = False

  def put(self, block: Block, values: Sequence[np.ndarray]) -> None:
    """Writes one block's leaves (in its own pytree order)."""
    g = self.grid
    rows, cols = g.rows(block.i), g.cols(block.j)
    l1, l2 = rows.stop - rows.start, cols.stop - cols.start
    own_kind = block.diagonal or not g.symmetric
    for t, (leaf, buf) in enumerate(zip(self.leaves, self.buffers)):
      if leaf.role == _outputs.PAIR:
        value = values[t] if own_kind else values[self.pair_index[t]]
        buf[rows, cols] = value[:l1, :l2]
        if g.symmetric and self.mirror and block.i < block.j:
          buf[cols, rows] = np.transpose(value, leaf.mirror)[:l2, :l1]
      elif not own_kind:
        continue
      elif leaf.role == _outputs.ROW and (block.diagonal or block.j == 0):
        _put_along(buf, values[t], leaf.axis, rows, l1)
      elif leaf.role == _outputs.COL and block.i == 0:
        _put_along(buf, values[t], leaf.axis, cols, l2)
      elif leaf.role == _outputs.CONST and not self._const_set:
        buf[...] = values[t]
    if own_kind:
      self._const_set = True


def _put_along(buf, value, axis: int, where: slice, length: int) -> None:
  index = [slice(None)] * buf.ndim
  index[axis] = where
  source = [slice(None)] * buf.ndim
  source[axis] = slice(0, length)
  buf[tuple(index)] = value[tuple(source)]
