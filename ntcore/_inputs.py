"""Raw inputs -> the input `Kernel` (the covariance of the data itself)."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.errors import ShapeError
from ntcore.kernel import Kernel


def canonical_input(x, name: str) -> jnp.ndarray:
  """Validates an input batch and casts it to the working float dtype.

  Like NT, inputs are computed in the widest enabled float type (float64
  when `jax_enable_x64` is on), so a float32 data set still gets a float64
  kernel when the user asked for x64.
  """
  if not hasattr(x, "shape") or not hasattr(x, "dtype"):
    x = np.asarray(x)
  if x.ndim < 2:
    raise ShapeError(
        f"{name} must have at least 2 axes (a batch axis and a channel axis), "
        f"got shape {tuple(x.shape)}. Reshape a single example to (1, d), or "
        f"a vector of scalars to (n, 1).")
  return jnp.asarray(x, jax.dtypes.canonicalize_dtype(jnp.float64))


def check_pair(x1, x2, batch_axis: int, name1="x1", name2="x2") -> None:
  """Raises if `x1` and `x2` differ anywhere but along the batch axis."""
  if x2 is None:
    return
  s1 = list(x1.shape)
  s2 = list(x2.shape)
  if len(s1) != len(s2):
    raise ShapeError(f"{name1} and {name2} must have the same number of axes, "
                     f"got shapes {tuple(s1)} and {tuple(s2)}.")
  del s1[batch_axis], s2[batch_axis]
  if s1 != s2:
    raise ShapeError(
        f"{name1} and {name2} may differ only along the batch axis "
        f"({batch_axis}), got shapes {tuple(x1.shape)} and {tuple(x2.shape)}.")


def _to_nsc(x, batch_axis, channel_axis):
  """Moves the batch axis first and the channel axis last."""
  batch_axis %= x.ndim
  channel_axis %= x.ndim
  if batch_axis == channel_axis:
    raise ShapeError(f"batch_axis and channel_axis are both {batch_axis}.")
  return jnp.moveaxis(x, (batch_axis, channel_axis), (0, -1))


def covariance(x1, x2, diagonal_batch: bool, diagonal_spatial: bool
               ) -> jnp.ndarray:
  """Mean over channels of `x1 * x2` for `(n, <spatial>, c)` arrays.

  Returns `(n1, n2, <spatial>)` (diagonal spatial) or `(n1, n2, h, h', ...)`
  (full, interleaved); with `diagonal_batch` (only for `x1 is x2`) the batch
  axis appears once: `(n1, <spatial>)`.
  """
  c = x1.shape[-1]
  d = x1.ndim - 2
  sp1 = "".join(chr(ord("a") + i) for i in range(d))
  sp2 = "".join(chr(ord("A") + i) for i in range(d)) if not diagonal_spatial else sp1
  if diagonal_spatial or d == 0:
    out_sp = sp1
  else:
    out_sp = "".join(a + b for a, b in zip(sp1, sp2))
  if diagonal_batch:
    eq = f"n{sp1}z,n{sp2}z->n{out_sp}"
  else:
    eq = f"n{sp1}z,m{sp2}z->nm{out_sp}"
  return jnp.einsum(eq, x1, x2) / c


def inputs_to_kernel(x1, x2, *, diagonal_batch: bool, diagonal_spatial: bool,
                     compute_ntk: bool, batch_axis: int, channel_axis: int,
                     mask_constant: Optional[float] = None) -> Kernel:
  """The covariance of the raw inputs, as the kernel a first layer consumes.

  `nngp = x1 . x2 / n_channels`, `ntk = 0` (the inputs have no parameters).
  Entries equal to `mask_constant` are masked: they are zeroed before the
  covariance and their mask is carried in `mask1` / `mask2`.
  """
  shape1 = tuple(x1.shape)
  shape2 = shape1 if x2 is None else tuple(x2.shape)

  def prepare(x):
    if x is None:
      return None, None
    mask = None
    if mask_constant is not None:
      mask = x == mask_constant
      x = jnp.where(mask, jnp.zeros((), x.dtype), x)
    return _to_nsc(x, batch_axis, channel_axis), mask

  z1, mask1 = prepare(x1)
  z2, mask2 = prepare(x2)
  nngp = covariance(z1, z1 if z2 is None else z2, False, diagonal_spatial)
  if z2 is None:
    # cov1 is exactly the batch diagonal of nngp: computing it separately
    # would differ by a few ulps, which kernels steep at correlation +-1
    # (Sign, Step) amplify to ~1e-8.
    cov1 = jnp.moveaxis(jnp.diagonal(nngp, 0, 0, 1), -1, 0) if diagonal_batch else nngp
  else:
    cov1 = covariance(z1, z1, diagonal_batch, diagonal_spatial)
  cov2 = None if z2 is None else covariance(z2, z2, diagonal_batch,
                                            diagonal_spatial)
  ntk = jnp.zeros((), nngp.dtype) if compute_ntk else None
  return Kernel(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, mask1=mask1,
                mask2=mask2, x1_is_x2=x2 is None, is_gaussian=False,
                is_reversed=False, is_input=True,
                diagonal_batch=diagonal_batch,
                diagonal_spatial=diagonal_spatial, shape1=shape1,
                shape2=shape2, batch_axis=batch_axis % len(shape1),
                channel_axis=channel_axis % len(shape1))
