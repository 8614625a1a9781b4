"""Dimension numbers of convolutions: which axis is batch, channel, spatial.

NT's convention (`lax.conv_general_dilated` strings): `lhs_spec` names the
input axes (`N` batch, `C` channels, any other letter spatial), `rhs_spec`
the filter's (`O`, `I`, spatial), `out_spec` the output's. Filter shapes and
strides are listed in `rhs_spec`'s spatial order; a `Kernel`'s spatial axes
follow the activations' (`lhs_spec`, then `out_spec`) order.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Optional, Sequence


def default_dimension_numbers(n_spatial: int) -> tuple[str, str, str]:
  """Channels-last: `('NABC', 'ABIO', 'NABC')` for two spatial axes."""
  letters = "".join(c for c in string.ascii_uppercase
                    if c not in "NCIO")[:n_spatial]
  lhs = "N" + letters + "C"
  return lhs, letters + "IO", lhs


@dataclasses.dataclass(frozen=True)
class ConvDims:
  """Parsed dimension numbers of a convolution with `n` spatial axes."""

  lhs: str
  rhs: str
  out: str

  @classmethod
  def make(cls, n_spatial: int, dimension_numbers: Optional[Sequence[str]],
           layer: str) -> "ConvDims":
    if dimension_numbers is None:
      return cls(*default_dimension_numbers(n_spatial))
    specs = [str(s) for s in dimension_numbers]
    lhs, rhs, out = specs if len(specs) == 3 else ("", "", "")
    sp = [c for c in rhs if c not in "IO"]
    ok = (len(specs) == 3
          and len(lhs) == len(rhs) == len(out) == n_spatial + 2
          and sorted(lhs) == sorted(out) and "N" in lhs and "C" in lhs
          and "I" in rhs and "O" in rhs
          and sorted(sp) == sorted(c for c in lhs if c not in "NC"))
    if not ok:
      raise ValueError(
          f"{layer}(dimension_numbers={dimension_numbers!r}) does not fit a "
          f"filter with {n_spatial} spatial axes: expected three strings like "
          f"{default_dimension_numbers(n_spatial)!r} (N batch, C channels, "
          f"I/O filter in/out, the same spatial letters in each).")
    return cls(lhs, rhs, out)

  @property
  def batch_axis(self) -> int:
    return self.lhs.index("N")

  @property
  def channel_axis(self) -> int:
    return self.lhs.index("C")

  @property
  def out_batch_axis(self) -> int:
    return self.out.index("N")

  @property
  def out_channel_axis(self) -> int:
    return self.out.index("C")

  @property
  def filter_letters(self) -> str:
    """Spatial letters in filter (`rhs_spec`) order."""
    return "".join(c for c in self.rhs if c not in "IO")

  @property
  def in_letters(self) -> str:
    """Spatial letters in input (`lhs_spec`) order: the kernel's order."""
    return "".join(c for c in self.lhs if c not in "NC")

  @property
  def out_letters(self) -> str:
    return "".join(c for c in self.out if c not in "NC")

  def to_input_order(self, per_filter_axis: Sequence[int]) -> tuple[int, ...]:
    """Reorders filter-ordered values (filter shape, strides) to input order."""
    return tuple(per_filter_axis[self.filter_letters.index(c)]
                 for c in self.in_letters)

  def input_spatial_axes(self) -> tuple[int, ...]:
    """Input axes of the spatial dims, in filter order (for padding)."""
    return tuple(self.lhs.index(c) for c in self.filter_letters)

  def output_spatial_axes(self) -> tuple[int, ...]:
    """Output axes of the spatial dims, in filter order."""
    return tuple(self.out.index(c) for c in self.filter_letters)

  def out_permutation(self) -> Optional[tuple[int, ...]]:
    """Input-order spatial index of each output spatial axis; None if equal."""
    perm = tuple(self.in_letters.index(c) for c in self.out_letters)
    return None if perm == tuple(range(len(perm))) else perm

  def spatial_sizes(self, shape: Sequence[int]) -> tuple[int, ...]:
    """Spatial sizes of input activations of `shape`, in input order."""
    return tuple(shape[self.lhs.index(c)] for c in self.in_letters)
