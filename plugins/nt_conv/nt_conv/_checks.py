"""Argument and input-shape checks shared by the convolution and pooling layers.

A misfit caught here is a `ShapeError` naming the layer and the fix, raised
when the layer is built (sizes and strides) or traced (inputs): never an
`IndexError` from a layout lookup, a `ZeroDivisionError` from padding
arithmetic, or an all-NaN kernel from an empty VALID window.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ntcore import ShapeError

from nt_conv import _padding

_IMAGE_LAYOUTS = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


def positive(layer: str, what: str, values: Sequence) -> tuple[int, ...]:
  """`values` as a tuple of ints, each >= 1.

  Raises:
    ShapeError: for a value that is not a positive integer.
  """
  try:
    out = tuple(int(v) for v in values)
  except (TypeError, ValueError) as e:
    raise ShapeError(f"{layer}: {what} must be a sequence of positive "
                     f"integers, got {values!r}.") from e
  if any(v < 1 or v != w for v, w in zip(out, values)):
    raise ShapeError(f"{layer}: {what} {tuple(values)} must hold positive "
                     f"integers (one per spatial axis); got "
                     f"{min(values)}.")
  return out


def layout_name(lhs: str) -> str:
  """`lhs` with what its letters mean, e.g. `'NABC' (N batch, A, B spatial,
  C channels)`; the image convention for the default layouts."""
  spatial = [c for c in lhs if c not in "NC"]
  image = _IMAGE_LAYOUTS.get(len(spatial))
  default = (image and image != lhs
             and lhs == "N" + "".join(spatial) + "C")
  words = (f"{lhs!r} (N batch, {', '.join(spatial)} spatial, C channels"
           + (f"; {image} for images" if default else "") + ")")
  return words if spatial else f"{lhs!r} (N batch, C channels)"


def check_rank(layer: str, shape: Sequence[int], rank: int, layout: str,
               what: str) -> None:
  """Raises a `ShapeError` unless `shape` has `rank` axes laid out as `layout`.

  `what` names the argument whose length sets the rank (`filter_shape`).
  """
  if len(shape) == rank:
    return
  hint = (" Add the missing axes (x[..., None] adds a channel axis, "
          "x[:, None] a spatial one)" if len(shape) < rank else
          " Remove the extra axes")
  n = len(shape) - 2
  if n >= 1:
    hint += (f", or give {layer} a {what} of length {n} (one entry per "
             "spatial axis)")
  raise ShapeError(
      f"{layer} expects inputs of rank {rank} laid out as "
      f"{layout_name(layout)}, but got an input of shape {tuple(shape)} "
      f"(rank {len(shape)}).{hint}.")


def pool_layout(rank: int, batch_axis: int, channel_axis: int) -> str:
  """The layout string of a rank-`rank` input to a pooling layer."""
  letters = list(_IMAGE_LAYOUTS.get(rank - 2, "N" + "ABCDEFGH"[:rank - 2]
                                    + "C")[1:-1])
  out = []
  for a in range(rank):
    out.append("N" if a == batch_axis % rank else
               "C" if a == channel_axis % rank else letters.pop(0))
  return "".join(out)


def check_windows(layer: str, what: str, sizes: Sequence[int],
                  windows: Sequence[int], strides: Sequence[int],
                  padding: str) -> None:
  """Raises a `ShapeError` if a VALID window leaves no output position.

  `sizes`, `windows` and `strides` list the spatial axes in one order.
  """
  if padding != "VALID":
    return
  for n, f, s in zip(sizes, windows, strides):
    if _padding.out_size(n, f, s, "VALID") < 1:
      raise ShapeError(
          f"{layer}: {what} {tuple(windows)} is larger than the input's "
          f"spatial shape {tuple(sizes)} with padding='VALID', so the output "
          f"would be empty. Use padding='SAME' (or 'CIRCULAR'), a smaller "
          f"{what}, or larger inputs.")


def conv_input_check(layer: str, dims, filter_shape: Sequence[int],
                     strides: Sequence[int], padding: str,
                     transpose: bool = False) -> Callable[[Sequence[int]], None]:
  """A check of a convolution's input shape, for init, apply and kernel.

  Args:
    layer: the layer's name, for messages.
    dims: the layer's `ConvDims`.
    filter_shape, strides: in filter (`rhs`) order.
    padding: the shape padding ("VALID", "SAME"); a transposed convolution
      has outputs for every input size, so only its rank is checked.
  """
  f_in, s_in = dims.to_input_order(filter_shape), dims.to_input_order(strides)

  def check(shape: Sequence[int]) -> None:
    check_rank(layer, shape, len(dims.lhs), dims.lhs, "filter_shape")
    if not transpose:
      check_windows(layer, "filter_shape", dims.spatial_sizes(shape), f_in,
                    s_in, padding)

  return check
