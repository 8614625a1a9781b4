"""The arguments Conv, ConvTranspose and ConvLocal share, checked once."""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

from ntcore import ShapeError

from nt_conv import _affine, _checks, _padding
from nt_conv._dims import ConvDims


class ConvArgs(NamedTuple):
  """Canonical convolution arguments.

  `lax_padding` is what the finite op is called with (CIRCULAR wraps the
  input first, then convolves VALID); `shape_padding` is what output shapes
  and masks follow (CIRCULAR keeps SAME's sizes). `width` is the number of
  output channels a finite layer has (`out_chan * s[1]` when standard).
  """

  filter_shape: tuple[int, ...]
  strides: tuple[int, ...]
  padding: str
  parameterization: str
  dims: ConvDims
  dn: tuple[str, str, str]
  lax_padding: str
  shape_padding: str
  width: int


def parse(name: str, out_chan: int, filter_shape: Sequence[int],
          strides: Optional[Sequence[int]], padding: str, dimension_numbers,
          parameterization: str, s: tuple[int, int]) -> ConvArgs:
  """Checks and canonicalizes a convolution layer's arguments.

  Raises:
    ShapeError: (a ValueError) strides and filter_shape of different
      lengths, or holding sizes that are not positive integers.
    ValueError: an unknown padding, parameterization or dimension_numbers.
  """
  filter_shape = _checks.positive(name, "filter_shape", filter_shape)
  n = len(filter_shape)
  strides = ((1,) * n if strides is None
             else _checks.positive(name, "strides", strides))
  if len(strides) != n:
    raise ShapeError(f"{name}: strides {strides} and filter_shape "
                     f"{filter_shape} have different lengths; give one "
                     "stride per filter axis.")
  padding = _padding.canonical_padding(padding, name)
  parameterization = _affine.canonical_parameterization(parameterization, name)
  dims = ConvDims.make(n, dimension_numbers, name)
  return ConvArgs(
      filter_shape, strides, padding, parameterization, dims,
      (dims.lhs, dims.rhs, dims.out),
      "VALID" if padding == "CIRCULAR" else padding,
      "SAME" if padding == "CIRCULAR" else padding,
      out_chan if parameterization == "ntk" else out_chan * s[1])
