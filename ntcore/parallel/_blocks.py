"""The block grid of a batched kernel: which `(rows, columns)` tiles to compute.

`x1` (n1 examples) is cut into row blocks of `b1` examples and `x2` (n2) into
column blocks of `b2`; the last block of each may be short (ragged). It is
padded to the full block size by repeating its last example
(`_split.take_block`), so that every block has one shape (one compilation,
and blocks of one kind can be stacked across devices); the padded rows and
columns are dropped when the block is written into the result.

When `x2` is None the kernel is symmetric: only the blocks on and above the
diagonal are computed (`T (T + 1) / 2` of `T^2`), and each block above the
diagonal also fills its mirror image below it.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator


@dataclasses.dataclass(frozen=True, order=True)
class Block:
  """One tile of the kernel.

  Attributes:
    i: row-block index (rows `i * b1 : (i + 1) * b1` of the kernel).
    j: column-block index.
    diagonal: True for a block of `x1` with itself when `x2` is None; it is
      computed as `kernel_fn(x1_block, None)`, which also gives the
      per-example quantities (`cov1`) the unbatched call returns.
  """

  i: int
  j: int
  diagonal: bool

  @property
  def name(self) -> str:
    """A file-name-safe name, e.g. `d_0_0` or `p_0_3`."""
    return f"{'d' if self.diagonal else 'p'}_{self.i}_{self.j}"


@dataclasses.dataclass(frozen=True)
class Grid:
  """The tiling of an `(n1, n2)` kernel into `(b1, b2)` blocks.

  Attributes:
    n1, n2: numbers of examples in `x1` and `x2` (`n2 == n1` when symmetric).
    b1, b2: block sizes (`b1 == b2` when symmetric).
    symmetric: `x2` is None: compute only blocks with `j >= i`.
  """

  n1: int
  n2: int
  b1: int
  b2: int
  symmetric: bool

  @property
  def shape(self) -> tuple[int, int]:
    """Numbers of row and column blocks."""
    return -(-self.n1 // self.b1), -(-self.n2 // self.b2)

  def blocks(self) -> list[Block]:
    """The blocks to compute, diagonal ones first, then row by row."""
    t1, t2 = self.shape
    if self.symmetric:
      diagonal = [Block(i, i, True) for i in range(t1)]
      return diagonal + [Block(i, j, False) for i in range(t1)
                         for j in range(i + 1, t2)]
    return [Block(i, j, False) for i in range(t1) for j in range(t2)]

  def rows(self, i: int) -> slice:
    return slice(i * self.b1, min((i + 1) * self.b1, self.n1))

  def cols(self, j: int) -> slice:
    return slice(j * self.b2, min((j + 1) * self.b2, self.n2))


def chunks(items: list, size: int) -> Iterator[list]:
  """`items` in consecutive groups of `size` (the last one may be shorter)."""
  for start in range(0, len(items), size):
    yield items[start:start + size]
