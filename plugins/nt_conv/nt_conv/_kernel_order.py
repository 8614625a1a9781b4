"""Which kernel-array axis holds which finite axis: for index, resize, dot.

A `Kernel`'s arrays hold the batch axes first (`nngp`: two, `cov1`/`cov2`:
one when `diagonal_batch`, else two) and then one group per spatial axis of
the finite activations: `(s, s')` when the spatial covariance is full, `(s,)`
when it is diagonal, stored in reversed order when `is_reversed` (see
`_layout`). Rules that address spatial axes by their position in the
activations look the stored order up here instead of transposing.
"""

from __future__ import annotations

from ntcore import Kernel

from nt_conv._layout import batch_ndim


def spatial_axes(ndim: int, batch_axis: int, channel_axis: int) -> list[int]:
  """The axes of `ndim`-d activations that are neither batch nor channel."""
  return [a for a in range(ndim) if a not in (batch_axis, channel_axis)]


def stored_spatial_axes(k: Kernel) -> list[int]:
  """The activations' spatial axis of each stored group of `k`, in order."""
  axes = spatial_axes(len(k.shape1), k.batch_axis, k.channel_axis)
  return axes[::-1] if k.is_reversed else axes


def arrays(k: Kernel):
  """`(field, array, n_batch_axes)` for each array of `k` that has axes.

  A 0-d `ntk` (still zero: no parameters met yet) is skipped.
  """
  for field in ("nngp", "ntk", "cov1", "cov2"):
    mat = getattr(k, field)
    if mat is not None and mat.ndim > 0:
      yield field, mat, batch_ndim(k, field)
