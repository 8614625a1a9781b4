"""Padding arithmetic shared by the finite layers and their kernel rules.

One spatial axis of size `size`, a window (filter) of `f` taps and stride
`s`: output position `o` reads input positions `o * s - lo + d`, `d < f`,
with zeros (SAME, VALID) or wrap-around (CIRCULAR) outside `[0, size)`.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from jax import lax

from ntcore import enums
from ntcore.enums import Padding

PADDINGS = tuple(p.value for p in Padding)


def canonical_padding(padding, layer: str) -> str:
  """The padding name: from a `stax.Padding` member or a string in any case.

  Raises:
    ntcore.enums.ChoiceError: (a ValueError) for an unknown padding.
  """
  return enums.parse(Padding, padding, f"{layer}(padding").value


def pads(size: int, f: int, s: int, padding: str) -> tuple[int, int]:
  """`(lo, hi)` zero padding of a window op; CIRCULAR pads as SAME (wrapped)."""
  name = "VALID" if padding == "VALID" else "SAME"
  return tuple(lax.padtype_to_pads((size,), (f,), (s,), name)[0])


def out_size(size: int, f: int, s: int, padding: str) -> int:
  """Number of output positions of a window op."""
  lo, hi = pads(size, f, s, padding)
  return max((size + lo + hi - f) // s + 1, 0)


def transpose_pads(f: int, s: int, padding: str) -> tuple[int, int]:
  """`(lo, hi)` of the dilated input of a transposed convolution.

  `lax.conv_transpose(x, w, s, padding)` is a stride-1 correlation with `w`
  of `x` dilated by `s` (s - 1 zeros between entries) and padded by these;
  CIRCULAR runs VALID and folds the result (see `fold`).
  """
  if padding == "SAME":
    lo = f - 1 if s > f - 1 else -(-(f + s - 2) // 2)
    return lo, f + s - 2 - lo
  return f - 1, f + s - 2 + max(f - s, 0) - (f - 1)


def transpose_out_size(size: int, f: int, s: int, padding: str) -> int:
  """Output size of a transposed convolution (CIRCULAR: as SAME, `size * s`)."""
  if padding in ("SAME", "CIRCULAR"):
    return size * s
  return size * s + max(f - s, 0)


def wrap(x, axes: Sequence[int], lo_hi: Sequence[tuple[int, int]]):
  """Circular padding of `axes` by `(lo, hi)` each."""
  widths = [(0, 0)] * x.ndim
  for a, p in zip(axes, lo_hi):
    widths[a] = p
  return jnp.pad(x, widths, mode="wrap")


def fold(x, axis: int, out: int):
  """Folds `axis` onto `out` positions: `y[j] = sum_k x[j + lo + k out]`.

  `lo = (n - out) // 2` for an axis of size `n`: NT's CIRCULAR transposed
  convolution wraps the VALID output's overhang back onto the SAME-sized
  output, centred.
  """
  n = x.shape[axis]
  lo = (n - out) // 2
  total = None
  k = -((lo + out - 1) // out) - 1
  while lo + k * out < n:
    start = lo + k * out
    a, b = max(start, 0), min(start + out, n)
    if a < b:
      part = lax.slice_in_dim(x, a, b, axis=axis)
      widths = [(0, 0)] * x.ndim
      widths[axis] = (a - start, start + out - b)
      part = jnp.pad(part, widths)
      total = part if total is None else total + part
    k += 1
  return total
