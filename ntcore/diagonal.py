"""NT's requirement vocabulary, `Bool` and `Diagonal`, mapped onto `Diag`.

A layer written Neural Tangents' way states with `stax.requires(
diagonal_spatial=stax.Diagonal(input=..., output=...))` which covariance
blocks its kernel reads and writes. ntcore states the same with one `Diag`
per axis; `to_diag` translates, so NT-style layers and plugin layers go
through the same block choice.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Union

from ntcore.requirements import Diag


class Bool(enum.IntEnum):
  """Three-valued logic: NO < MAYBE < YES (`&` is the minimum)."""

  NO = 0
  MAYBE = 1
  YES = 2

  def __and__(self, other: "Bool") -> "Bool":
    return min(self, other)

  __rand__ = __and__


@dataclasses.dataclass(frozen=True)
class Diagonal:
  """Whether a layer's kernel may be computed from diagonal blocks only.

  Attributes:
    input: YES: the layer reads only diagonal input blocks; MAYBE: only if
      the input's off-diagonal blocks are zero; NO: it reads off-diagonal
      blocks.
    output: YES: the output has no such axis (or only its diagonal is ever
      read again); MAYBE: the output's off-diagonal blocks are zero; NO:
      later layers may read the output's off-diagonal blocks.
  """

  input: Bool = Bool.YES
  output: Bool = Bool.NO

  def __rshift__(self, other: "Diagonal") -> "Diagonal":
    """The requirement of `other` applied after `self`."""
    if self.output == Bool.YES:
      return self
    if self.output > Bool.NO and other.input > Bool.NO:
      first = self.input
    elif self.output == Bool.NO and other.input < Bool.YES:
      first = Bool.NO
    else:
      first = min(self.input, other.input)
    return Diagonal(input=first, output=other.output)

  def __lshift__(self, other: "Diagonal") -> "Diagonal":
    """`other >> self`: the requirement of `self` applied after `other`."""
    return other >> self

  def __and__(self, other: "Diagonal") -> "Diagonal":
    """The requirement of two layers side by side (in `parallel`)."""
    return Diagonal(input=self.input & other.input,
                    output=self.output & other.output)


def to_diag(req: Union[None, bool, Diagonal]) -> Diag:
  """The `Diag` of an NT requirement (`True`/`None`, `False` or a `Diagonal`).

  `True` and `None`: diagonal blocks are enough (`Diag.PRESERVES`);
  `False`: the rule reads off-diagonal blocks (`Diag.NEEDS_FULL`).
  """
  if req is None or req is True:
    return Diag.PRESERVES
  if req is False:
    return Diag.NEEDS_FULL
  if not isinstance(req, Diagonal):
    raise TypeError(f"a diagonal requirement must be a bool, None or a "
                    f"stax.Diagonal, got {req!r}.")
  if req.output == Bool.YES:
    return Diag.REMOVES if req.input == Bool.YES else Diag.REMOVES_FULL
  if req.input == Bool.YES:
    return (Diag.ZEROES_OFF_DIAGONAL if req.output == Bool.MAYBE
            else Diag.PRESERVES)
  return Diag.NEEDS_FULL
