"""`DotGeneral`: `lax.dot_general` of the activations with a constant array."""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ntcore import Diag, Requirements, make_layer

DimensionNumbers = Any  # ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))


def DotGeneral(*, lhs: Optional[Any] = None, rhs: Optional[Any] = None,
               dimension_numbers: DimensionNumbers = (((), ()), ((), ())),
               precision: Optional[lax.Precision] = None,
               batch_axis: int = 0, channel_axis: int = -1):
  """Dot product with a constant: `lax.dot_general(x, rhs)` or `(lhs, x)`.

  Any linear map of the non-channel axes with a fixed (non-trainable)
  array: scaling, sums or differences of positions, permutations, ...

  Args:
    lhs: constant left operand, the activations being the right one; or None.
    rhs: constant right operand, the activations being the left one; or None.
      With both None the layer is the identity.
    dimension_numbers: `((lhs_contracting, rhs_contracting), (lhs_batch,
      rhs_batch))` as in `lax.dot_general`. The channel axis may not appear;
      the batch axis may be a batch dimension but not contracted.
    precision: `lax.Precision` of the products (finite and kernel).
    batch_axis: batch axis of the inputs.
    channel_axis: channel axis of the inputs. The output's batch and channel
      axes are wherever `dot_general` moves them (as in NT).

  Kernel: the layer is linear in `x` with channel-independent weights,
  `y[o] = sum_i A[o, i] x[i]` over the non-channel axes, so for i.i.d.
  channels `Cov(y1[o], y2[o']) = sum_{i, i'} A[o, i] A[o', i'] Cov(x1[i],
  x2[i'])`: the covariance is contracted with the constant on both sides,
  `nngp' = R . nngp . R` (one einsum; likewise `ntk`, which has no
  parameters to add, and `cov1`, `cov2`). Gaussian inputs stay Gaussian.
  Contracted spatial axes need the off-diagonal spatial covariances. The
  output is stored in the activations' order (`is_reversed=False`).

  The rule is `Kernel.dot_general`, with the constant on both sides.

  Raises:
    ValueError: if both `lhs` and `rhs` are given.
    KernelRequirementError: from `kernel_fn`, if `dimension_numbers` name
      the channel axis, contract the batch axis, or pair it with an axis
      of the constant whose size is not both batches' size.
  """
  if lhs is not None and rhs is not None:
    raise ValueError(
        "DotGeneral takes lhs or rhs, not both: the other operand is the "
        "layer's input. Pass the constant as lhs=... (input on the right) or "
        "rhs=... (input on the left).")
  is_lhs = rhs is None
  constant = lhs if is_lhs else rhs
  (lc, rc), _ = dimension_numbers
  contracts_input = len(rc if is_lhs else lc) > 0

  def other(dtype):
    return jnp.asarray(constant, dtype)

  def dot(x, y):
    args = (y, x) if is_lhs else (x, y)
    return lax.dot_general(*args, dimension_numbers, precision=precision)

  def init_fn(key, input_shape):
    del key
    if constant is None:
      return tuple(input_shape), ()
    out = jax.eval_shape(lambda x: dot(x, other(x.dtype)),
                         jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
    return out.shape, ()

  def apply_fn(params, x, **kwargs):
    del params, kwargs
    return x if constant is None else dot(x, other(x.dtype))

  def rule(k, **kwargs):
    """DotGeneral: `nngp'[o, o'] = sum R[o, i] nngp[i, i'] R[o', i']`."""
    del kwargs
    if constant is None:
      return k
    const = other(k.nngp.dtype)
    return k.dot_general(const, const, is_lhs, dimension_numbers,
                         precision=precision)

  def mask_fn(mask, input_shape):
    if constant is None:
      return mask
    shape = list(input_shape)
    c = channel_axis % len(shape)
    shape[c] = mask.shape[c]
    keep = (~jnp.broadcast_to(mask, shape)).astype(jnp.float32)
    weights = (np.asarray(constant) != 0).astype(np.float32)
    # Masked iff no unmasked input reaches the output position with a nonzero
    # weight: a sum of nonnegative terms is zero only then.
    return dot(keep, jnp.asarray(weights)) == 0

  requires = Requirements(
      batch_axis=batch_axis, channel_axis=channel_axis,
      diagonal_spatial=Diag.NEEDS_FULL if contracts_input else Diag.PRESERVES)
  return make_layer("DotGeneral", init_fn, apply_fn, rule, requires, mask_fn)
