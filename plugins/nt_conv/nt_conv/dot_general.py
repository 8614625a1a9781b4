"""`DotGeneral`: `lax.dot_general` of the activations with a constant array."""

from __future__ import annotations

import itertools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ntcore import Diag, KernelRequirementError, Requirements, make_layer

from nt_conv import _kernel_order

DimensionNumbers = Any  # ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))


def _axes(dims, ndim: int) -> list[int]:
  return [int(a) % ndim for a in dims]


def _split(dimension_numbers, is_lhs: bool, n_in: int, n_other: int):
  """`(in_contract, other_contract, in_batch, other_batch)`, non-negative."""
  (lc, rc), (lb, rb) = dimension_numbers
  if is_lhs:
    other_c, in_c, other_b, in_b = lc, rc, lb, rb
  else:
    in_c, other_c, in_b, other_b = lc, rc, lb, rb
  return (_axes(in_c, n_in), _axes(other_c, n_other), _axes(in_b, n_in),
          _axes(other_b, n_other))


def output_axes(dimension_numbers, is_lhs: bool, n_in: int, n_other: int
                ) -> list[tuple[str, int]]:
  """Where each output axis of `lax.dot_general` comes from.

  Entries are `("in", a)` (axis `a` of the activations) or `("other", j)`:
  the batch dimensions first, then the free axes of the left operand, then
  those of the right one (XLA's DotGeneral semantics).
  """
  in_c, other_c, in_b, other_b = _split(dimension_numbers, is_lhs, n_in,
                                        n_other)
  batch = [("in", a) for a in in_b]
  free_in = [("in", a) for a in range(n_in) if a not in in_c + in_b]
  free_other = [("other", j) for j in range(n_other)
                if j not in other_c + other_b]
  return batch + (free_other + free_in if is_lhs else free_in + free_other)


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

  Raises:
    ValueError: if both `lhs` and `rhs` are given.
    KernelRequirementError: from `kernel_fn`, if `dimension_numbers` name
      the channel axis, or contract the batch axis.
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
    n_in, n_other = len(k.shape1), const.ndim
    b, c = k.batch_axis, k.channel_axis
    in_c, other_c, in_b, other_b = _split(dimension_numbers, is_lhs, n_in,
                                          n_other)
    _check(k, in_c, in_b, const.shape, dict(zip(in_b, other_b)))
    out_axes = output_axes(dimension_numbers, is_lhs, n_in, n_other)
    spatial_out = [e for e in out_axes if e not in (("in", b), ("in", c))]
    pairs = dict(zip(other_c + other_b, in_c + in_b))  # other -> input axis
    other_keys = [("in", pairs[j]) if j in pairs else ("other", j)
                  for j in range(n_other)]
    stored = [("in", a) for a in _kernel_order.stored_spatial_axes(k)]
    diag = k.diagonal_spatial
    # One einsum label per finite axis and side (x1: left, x2: right); with
    # diagonal spatial covariances both sides of a position share a label.
    new = itertools.count().__next__
    left = {("in", a): new() for a in [b] + _kernel_order.spatial_axes(
        n_in, b, c)}
    left.update({("other", j): new() for j in range(n_other)
                 if j not in pairs})
    right = {key: lab if diag and key != ("in", b) else new()
             for key, lab in left.items()}

    def contract(mat, n_batch):
      # cov1/cov2 with diagonal_batch have one batch axis for both sides.
      r = right if n_batch == 2 else {**right, ("in", b): left[("in", b)]}
      batch = [left[("in", b)]] + ([r[("in", b)]] if n_batch == 2 else [])

      def groups(keys):
        return [lab for key in keys
                for lab in ((left[key],) if diag else (left[key], r[key]))]

      return jnp.einsum(const, [left[key] for key in other_keys],
                        mat, batch + groups(stored),
                        const, [r[key] for key in other_keys],
                        batch + groups(spatial_out),
                        precision=precision, optimize=True)

    out = {field: contract(mat, n_batch)
           for field, mat, n_batch in _kernel_order.arrays(k)}
    return k.replace(batch_axis=out_axes.index(("in", b)),
                     channel_axis=out_axes.index(("in", c)),
                     is_reversed=False, **out)

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


def _check(k, in_c, in_b, other_shape, batch_pairs) -> None:
  """Rejects dimension numbers the kernel cannot follow."""
  b, c = k.batch_axis, k.channel_axis
  if b in batch_pairs:
    size = other_shape[batch_pairs[b]]
    if {k.shape1[b], k.shape2[b]} != {size}:
      raise KernelRequirementError(
          f"DotGeneral pairs the batch axis ({b}) with axis "
          f"{batch_pairs[b]} of the constant (size {size}), so x1 and x2 must "
          f"both have {size} examples; got {k.shape1[b]} and {k.shape2[b]}.")
  if c in in_c + in_b:
    raise KernelRequirementError(
        f"DotGeneral's dimension_numbers use the channel axis ({c}) of its "
        f"input of shape {k.shape1}; at infinite width the channels cannot "
        f"be contracted or paired with a constant. Contract other axes, or "
        f"set channel_axis to the axis that holds the features.")
  if b in in_c:
    raise KernelRequirementError(
        f"DotGeneral contracts the batch axis ({b}) of its input of shape "
        f"{k.shape1}, which mixes examples; kernels need the batch axis to "
        f"stay. Contract only spatial axes.")
  spatial_contracted = [a for a in in_c if a != b]
  if spatial_contracted and k.diagonal_spatial:
    raise KernelRequirementError(
        f"DotGeneral contracts spatial axes {spatial_contracted}, which needs "
        f"the off-diagonal spatial covariances, but its input kernel keeps "
        f"only the diagonal. Leave diagonal_spatial unset.")
