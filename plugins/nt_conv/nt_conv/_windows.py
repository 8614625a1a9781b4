"""Window sums over the spatial axes of kernel arrays: convolution and pooling.

A convolution or pooling layer acts on each spatial axis of its activations
by a window op, `y[o] = sum_d c x[o s - lo + d]` (zeros outside). On a
covariance the op acts on both axes `(h, h')` of a pair: a convolution, whose
weights are shared and independent across taps, sums along the pair's
diagonal,

    K'(o, o') = sum_d K(o s - lo + d, o' s - lo + d),

and pooling, whose two copies are summed independently, over the square,
`sum_{d, d'} K(o s - lo + d, o' s - lo + d')`. A `Window` names the kernel
axes one tap index moves together: a pair for a convolution of a full
spatial covariance, one axis for pooling or a diagonal-spatial kernel.

Performance (XLA on CPU, measured on the benchmark networks): windows are
`lax.reduce_window`s, never convolutions.

* NT convolves each `(h, h')` plane with a diagonal `f x f` filter
  (`lax.conv_general_dilated`, one channel): `f` times the work on zeros, and
  XLA's CPU backend runs one-channel convolutions ~10x slower than the
  equivalent window sums.
* A sum of shifted slices is as fast in isolation, but XLA treats slices as
  free and fuses the whole sum into every consumer (a nonlinearity's several
  fusions, the next layer), recomputing it per consumer and per tap; whole
  networks ran 3-10x slower. XLA computes a `reduce_window` once.
* Stride-1 box windows (a convolution of a diagonal-spatial kernel) go one
  axis at a time: a one-axis `reduce_window` runs ~4x faster than a
  multi-axis one (5 ms vs 21 ms for 3x3 on a 128 x 128 x 16 x 16 kernel).
  Strided ones (pooling) and diagonal windows stay one op: each pass would
  be a kernel to compile and an intermediate to hold, which costs more
  memory (45 MB on Myrtle-5) than it saves time.
* A diagonal window is a `reduce_window` too: flatten the pair
  `(h, j)`, `j` the second index zero-padded to a row of `P`; a diagonal step
  `(+1, +1)` is then a step of `P + 1`, the window's dilation. Rows outside
  the image fall off the flattened axis into `reduce_window`'s own zero
  padding, so only the second axis of each pair is padded (a copy 1.56x the
  kernel for 8x8 images, not 2.44x).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import jax.numpy as jnp
from jax import lax


@dataclasses.dataclass(frozen=True)
class Window:
  """A window op on kernel axes `axes` that move together.

  Output position `o` of each axis reads input positions `o * s - lo + d`,
  `0 <= d < f`; `out` positions are kept.
  """

  axes: tuple[int, ...]
  f: int
  lo: int
  s: int
  out: int


def window_sum(m, windows: Sequence[Window]):
  """`sum` over every window's taps of the shifted `m`; zeros outside.

  Each window acts on one axis (box) or on an adjacent axis pair (diagonal).
  """
  box = [w for w in windows if len(w.axes) == 1]
  pairs = [w for w in windows if len(w.axes) == 2]
  if any(len(w.axes) > 2 or (len(w.axes) == 2 and w.axes[1] != w.axes[0] + 1)
         for w in windows):
    raise ValueError(f"windows on unsupported axes: {windows}")
  if pairs:
    m = _diagonal(m, pairs)
  if box and all(w.s == 1 for w in box):
    for w in box:
      m = _box(m, [w])
  elif box:
    m = _box(m, box)
  return m


def _box(m, windows):
  """Windows on distinct single axes, as one `reduce_window`."""
  dims, steps, pads = [1] * m.ndim, [1] * m.ndim, [(0, 0)] * m.ndim
  for w in windows:
    a, = w.axes
    dims[a], steps[a] = w.f, w.s
    hi = (w.out - 1) * w.s + w.f - w.lo - m.shape[a]
    if hi < 0:  # VALID windows that leave trailing positions unread
      m = lax.slice_in_dim(m, 0, m.shape[a] + hi, axis=a)
      hi = 0
    pads[a] = (w.lo, hi)
  return lax.reduce_window(m, np.zeros((), m.dtype), lax.add, dims, steps,
                           pads)


def _diagonal(m, windows):
  """Windows on axis pairs, summed along each pair's diagonal (module doc).

  Computed at every anchor `(a, a')` of the `span = (out - 1) s + 1` first
  positions, then the anchors `(o s, o' s)` are kept.
  """
  widths = [(0, 0)] * m.ndim
  spans = {}
  for w in windows:
    a, b = w.axes
    span = (w.out - 1) * w.s + 1
    # Row j of the padded second axis holds input j - lo; anchors up to
    # span - 1 read up to span - 1 + f - 1.
    widths[b] = (w.lo, max(span + w.f - 1 - (m.shape[b] + w.lo), 0))
    spans[a] = span
  m = jnp.pad(m, widths)
  flat, dims, dilation, pads, split = [], [], [], [], []
  i = 0
  while i < m.ndim:
    w = next((w for w in windows if w.axes[0] == i), None)
    if w is None:
      flat.append(m.shape[i])
      dims.append(1)
      dilation.append(1)
      pads.append((0, 0))
      split.append((m.shape[i],))
      i += 1
      continue
    n, p = m.shape[i], m.shape[i + 1]
    span = spans[i]
    # Anchor (a, a') is flat index a p + a'; its window starts at
    # (a - lo) p + a' and steps by p + 1. Pad so that the VALID output has
    # exactly span * p entries.
    lo = w.lo * p
    hi = span * p - n * p - lo + (w.f - 1) * (p + 1)
    flat.append(n * p)
    dims.append(w.f)
    dilation.append(p + 1)
    pads.append((lo, hi))
    split.append((span, p))
    i += 2
  m = m.reshape(flat)
  for ax, (lo, hi) in enumerate(pads):
    if hi < 0:
      m = lax.slice_in_dim(m, 0, m.shape[ax] + hi, axis=ax)
      pads[ax] = (lo, 0)
  m = lax.reduce_window(m, np.zeros((), m.dtype), lax.add, dims,
                        (1,) * m.ndim, pads, window_dilation=dilation)
  m = lax.slice(m, [0] * m.ndim, [math.prod(t) for t in split])
  shape = sum(split, ())
  m = m.reshape(shape)
  limit, stride = list(shape), [1] * m.ndim
  for w in windows:
    a, b = w.axes
    limit[a] = limit[b] = spans[a]
    stride[a] = stride[b] = w.s
  return lax.slice(m, [0] * m.ndim, limit, stride)


def dilate(m, axes: Sequence[int], s: Sequence[int],
           lo_hi: Sequence[tuple[int, int]]):
  """Inserts `s - 1` zeros between entries of each axis and pads `(lo, hi)`."""
  config = [(0, 0, 0)] * m.ndim
  for a, si, (lo, hi) in zip(axes, s, lo_hi):
    config[a] = (lo, hi, si - 1)
  return lax.pad(m, jnp.zeros((), m.dtype), config)
