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
  dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
  if isinstance(x, np.ndarray):
    # Cast on the host: a device cast compiles once per input shape.
    return jax.device_put(np.asarray(x, dtype))
  return jnp.asarray(x, dtype)


def canonical_inputs(x, name: str):
  """`canonical_input` of an input batch, or of each of a list of them."""
  if isinstance(x, (list, tuple)):
    return [canonical_inputs(xi, f"{name}[{i}]") for i, xi in enumerate(x)]
  return canonical_input(x, name)


def check_pairs(x1, x2, batch_axis: int) -> None:
  """`check_pair` for inputs or lists of inputs (one per network input)."""
  if x2 is None:
    return
  if isinstance(x1, list) != isinstance(x2, list) or (
      isinstance(x1, list) and len(x1) != len(x2)):
    n1 = len(x1) if isinstance(x1, list) else 1
    n2 = len(x2) if isinstance(x2, list) else 1
    raise ShapeError(f"x1 has {n1} input(s) and x2 has {n2}; give both the "
                     f"same number (one array per network input).")
  if isinstance(x1, list):
    for a, b in zip(x1, x2):
      check_pairs(a, b, batch_axis)
  else:
    check_pair(x1, x2, batch_axis)


def flatten_if_shapes_differ(x1, x2, batch_axis: int):
  """`(x1, x2)` as `(n, -1)` arrays when their example shapes differ but
  their example sizes agree (for a network that starts with `Flatten`)."""
  if (x2 is None or isinstance(x1, list) or isinstance(x2, list)
      or batch_axis % x1.ndim != 0 or batch_axis % x2.ndim != 0
      or x1.shape[1:] == x2.shape[1:]
      or np.prod(x1.shape[1:]) != np.prod(x2.shape[1:])):
    return x1, x2
  return x1.reshape(x1.shape[0], -1), x2.reshape(x2.shape[0], -1)


SAME_INPUTS_EPS = 1e-12
"""`x2` within this (absolute, entrywise) of `x1` is `x1` (as in NT)."""


def same_inputs(x1, x2) -> Optional[bool]:
  """Whether `x2` is `x1`: True, False, or None when only a traced
  comparison can tell (inputs of equal shapes under a transformation)."""
  if x2 is None or x2 is x1:
    return True
  if isinstance(x1, (list, tuple)) or isinstance(x2, (list, tuple)):
    if not (isinstance(x1, (list, tuple)) and isinstance(x2, (list, tuple))
            and len(x1) == len(x2)):
      return False
    answers = [same_inputs(a, b) for a, b in zip(x1, x2)]
    if any(a is False for a in answers):
      return False
    return None if any(a is None for a in answers) else True
  if np.shape(x1) != np.shape(x2):
    return False
  if isinstance(x1, jax.core.Tracer) or isinstance(x2, jax.core.Tracer):
    return None
  a = np.asarray(x1)
  b = np.asarray(x2)
  if a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub":
    return bool(np.array_equal(a, b))
  return bool(np.all(np.abs(a - b) < SAME_INPUTS_EPS))


def traced_same(x1, x2):
  """On-device `same_inputs` of canonical inputs of equal shapes."""
  if isinstance(x1, list):
    return jnp.all(jnp.stack([traced_same(a, b) for a, b in zip(x1, x2)]))
  return jnp.all(jnp.abs(x1 - x2) < SAME_INPUTS_EPS)


def inputs_to_kernels(x1, x2, **kwargs):
  """`inputs_to_kernel` of inputs, or a list of kernels for lists of inputs."""
  if isinstance(x1, list):
    x2 = [None] * len(x1) if x2 is None else x2
    return [inputs_to_kernels(a, b, **kwargs) for a, b in zip(x1, x2)]
  return inputs_to_kernel(x1, x2, **kwargs)


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
