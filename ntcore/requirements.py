"""What a kernel rule needs of its input kernel, as data: `Requirements`, `Diag`, `Need`.

The core reads these to choose which covariance blocks to compute (NT paper
section 3.1): asked last layer first, each layer turns what its output must
hold along an axis (a `Need`) into what its input must hold
(`Diag.input_need`); the network's answer for its first layer decides the
blocks of the input kernel. See `ntcore/_network/README.md`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Optional


class Need(enum.Enum):
  """Which blocks a kernel must carry along one axis (batch or spatial).

  NT calls this three-valued need `Bool` (`NO`, `MAYBE`, `YES`).
  """

  DIAGONAL = "diagonal"
  """Diagonal blocks are enough (per-example variances, same-position pairs)."""
  FULL_UNLESS_ZERO = "full_unless_zero"
  """Full blocks, unless the layer before outputs exactly zero off-diagonal
  blocks (ConvLocal), whose diagonal then says everything. What pooling asks."""
  FULL = "full"
  """Full blocks: off-diagonal entries are read."""

  @classmethod
  def of(cls, full: bool) -> "Need":
    """`FULL` for True, `DIAGONAL` for False."""
    return cls.FULL if full else cls.DIAGONAL

  @property
  def is_diagonal(self) -> bool:
    """True only for `DIAGONAL`: the other two need off-diagonal storage."""
    return self is Need.DIAGONAL

  @classmethod
  def of_branches(cls, needs) -> "Need":
    """What the input of parallel branches needs: `FULL` if any branch needs
    more than the diagonal (a branch's `FULL_UNLESS_ZERO` counts as `FULL`)."""
    return cls.FULL if any(not n.is_diagonal for n in needs) else cls.DIAGONAL


class Diag(enum.Enum):
  """How a layer's rule treats an axis along which blocks may be skipped.

  For the batch axis this concerns `cov1`/`cov2` (variances only, or the
  full `n1 x n1` covariance); for spatial axes it concerns every array
  (same-position pairs only, or all pairs). NT paper section 3.1.
  """

  PRESERVES = "preserves"
  """Diagonal output blocks need only diagonal input blocks (Dense, Relu, Conv)."""
  NEEDS_FULL = "needs_full"
  """Every output block may read off-diagonal input blocks (AvgPool)."""
  REMOVES = "removes"
  """The output has no such axis and reads only diagonal blocks (Flatten)."""
  REMOVES_FULL = "removes_full"
  """The output has no such axis and reads off-diagonal blocks (GlobalAvgPool)."""
  ZEROES_OFF_DIAGONAL = "zeroes_off_diagonal"
  """Off-diagonal output blocks are exactly zero, so only diagonal input blocks
  are read (ConvLocal); the output stays diagonal unless a later layer needs
  its off-diagonal blocks even where they are zero."""

  def input_need(self, output_need: Need) -> Need:
    """What the input must carry, given what the output must carry.

    | `Diag` | output `DIAGONAL` | `FULL_UNLESS_ZERO` | `FULL` |
    |---|---|---|---|
    | `PRESERVES` | `DIAGONAL` | `FULL` | `FULL` |
    | `ZEROES_OFF_DIAGONAL` | `DIAGONAL` | `DIAGONAL` | `FULL` |
    | `NEEDS_FULL` | `FULL_UNLESS_ZERO` | `FULL` | `FULL` |
    | `REMOVES_FULL` | `FULL_UNLESS_ZERO` (always) | | |
    | `REMOVES` | `DIAGONAL` (always) | | |
    """
    if self is Diag.PRESERVES:
      return Need.of(not output_need.is_diagonal)
    if self is Diag.ZEROES_OFF_DIAGONAL:
      return Need.of(output_need is Need.FULL)
    if self is Diag.NEEDS_FULL:
      return (Need.FULL_UNLESS_ZERO if output_need.is_diagonal
              else Need.FULL)
    if self is Diag.REMOVES_FULL:
      return Need.FULL_UNLESS_ZERO
    return Need.DIAGONAL


@dataclasses.dataclass(frozen=True)
class Requirements:
  """What a kernel rule needs of its input kernel.

  Attributes:
    gaussian_input: the rule is an expectation over Gaussian pre-activations
      (nonlinearities), so an affine layer must come before it.
    diagonal_batch: how the rule treats the batch axis of `cov1`/`cov2`.
    diagonal_spatial: how the rule treats spatial axes.
    batch_axis: the batch axis of the finite activations this layer expects,
      or None if it does not care.
    channel_axis: the channel axis it expects, or None.
    remask: zero the masked entries of the output kernel (layers that mix
      channels, like Dense, turn a masked input position into a masked output
      position whose covariance must be exactly zero).
    flat_input: the layer reads each example as one flat vector (Flatten):
      as a first layer, raw inputs `x1`, `x2` whose example shapes differ
      but whose example sizes agree are flattened before the kernel.
  """

  gaussian_input: bool = False
  diagonal_batch: Diag = Diag.PRESERVES
  diagonal_spatial: Diag = Diag.PRESERVES
  batch_axis: Optional[int] = None
  channel_axis: Optional[int] = None
  remask: bool = False
  flat_input: bool = False


GAUSSIAN_INPUT = Requirements(gaussian_input=True)
"""Requirements of an elementwise nonlinearity."""
