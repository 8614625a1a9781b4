"""`Kernel.dot_general`: covariances of `lax.dot_general(x, other)`.

`y = dot_general(x, A)` is linear in `x` with the same weights for every
channel, `y[o] = sum_i A[o, i] x[i]` over the non-channel axes, so for
i.i.d. channels

    Cov(y1[o], y2[o']) = sum_{i, i'} A1[o, i] A2[o', i'] Cov(x1[i], x2[i']):

each covariance is contracted with `A1` on its left (x1) side and `A2` on
its right (x2) side, one einsum per array. A spatial axis paired as a batch
dimension is kept and multiplied entrywise; a contracted one needs the
off-diagonal spatial covariances.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from jax import lax

from ntcore import _layout
from ntcore.errors import KernelRequirementError


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


def _check(k, in_c, in_b, other_shapes, batch_pairs) -> None:
  b, c = k.batch_axis, k.channel_axis
  if b in batch_pairs:
    shape2 = k.shape1 if k.x1_is_x2 else k.shape2
    got = (k.shape1[b], shape2[b])
    want = tuple(s[batch_pairs[b]] for s in other_shapes)
    if got != want:
      need = (f"both have {want[0]}" if want[0] == want[1]
              else f"have {want[0]} and {want[1]}")
      raise KernelRequirementError(
          f"Kernel.dot_general pairs the batch axis ({b}) with axis "
          f"{batch_pairs[b]} of the constants of shapes {other_shapes[0]} and "
          f"{other_shapes[1]}, so x1 and x2 must {need} examples; got "
          f"{got[0]} and {got[1]}.")
  if c in in_c + in_b:
    raise KernelRequirementError(
        f"Kernel.dot_general: dimension_numbers use the channel axis ({c}) "
        f"of activations of shape {k.shape1}; at infinite width the channels "
        f"cannot be contracted or paired with a constant. Contract other "
        f"axes, or set channel_axis to the axis that holds the features.")
  if b in in_c:
    raise KernelRequirementError(
        f"Kernel.dot_general contracts the batch axis ({b}) of activations "
        f"of shape {k.shape1}, which mixes examples; a kernel keeps its batch "
        f"axis. Contract only spatial axes, or pair the batch axis as a "
        f"batch dimension.")
  if k.diagonal_spatial and [a for a in in_c if a != b]:
    raise KernelRequirementError(
        f"Kernel.dot_general contracts spatial axes {in_c}, which needs the "
        f"off-diagonal spatial covariances, but this kernel keeps only the "
        f"diagonal (diagonal_spatial=True). Compute it with "
        f"diagonal_spatial=False.")


def dot_general(k, other1, other2, is_lhs: bool, dimension_numbers,
                precision=None):
  """See `Kernel.dot_general`."""
  if other1 is None and other2 is None:
    return k
  if other2 is None and k.x1_is_x2:
    other2 = other1  # x2 is x1: the same map acts on both sides
  if other1 is None or other2 is None:
    raise KernelRequirementError(
        "Kernel.dot_general got one constant for one input batch and None for "
        "the other; the two sides would then have different layouts. Pass "
        "both (the same array twice if x1 and x2 share it).")
  same = other2 is other1
  other1, other2 = jnp.asarray(other1), jnp.asarray(other2)
  if other1.ndim != other2.ndim:
    raise KernelRequirementError(
        f"Kernel.dot_general: other1 and other2 must have the same number of "
        f"axes, got shapes {other1.shape} and {other2.shape}.")
  n_in, n_other = len(k.shape1), other1.ndim
  b, c = k.batch_axis, k.channel_axis
  in_c, other_c, in_b, other_b = _split(dimension_numbers, is_lhs, n_in,
                                        n_other)
  _check(k, in_c, in_b, (other1.shape, other2.shape),
         dict(zip(in_b, other_b)))
  out_axes = ([("in", a) for a in in_b], [
      ("in", a) for a in range(n_in) if a not in in_c + in_b], [
          ("other", j) for j in range(n_other) if j not in other_c + other_b])
  out_axes = out_axes[0] + (out_axes[2] + out_axes[1] if is_lhs
                            else out_axes[1] + out_axes[2])
  spatial_out = [e for e in out_axes if e not in (("in", b), ("in", c))]
  pairs = dict(zip(other_c + other_b, in_c + in_b))  # other axis -> input axis
  other_keys = [("in", pairs[j]) if j in pairs else ("other", j)
                for j in range(n_other)]
  diag = k.diagonal_spatial
  # One einsum label per finite axis and side (x1: left, x2: right); in a
  # diagonal spatial layout both sides of a position share one label.
  new = itertools.count().__next__
  left = {("in", a): new() for a in range(n_in) if a != c}
  left.update({("other", j): new() for j in range(n_other) if j not in pairs})
  right = {key: lab if diag and key != ("in", b) else new()
           for key, lab in left.items()}
  stored = [("in", a) for a in _layout.stored_spatial_axes(k)]

  def contract(mat, n_batch, a1, a2):
    r = right if n_batch == 2 else {**right, ("in", b): left[("in", b)]}
    batch = [left[("in", b)]] + ([r[("in", b)]] if n_batch == 2 else [])

    def groups(keys):
      return [lab for key in keys
              for lab in ((left[key],) if diag else (left[key], r[key]))]

    return jnp.einsum(a1, [left[key] for key in other_keys],
                      mat, batch + groups(stored),
                      a2, [r[key] for key in other_keys],
                      batch + groups(spatial_out), precision=precision,
                      optimize=True)

  consts = dict(nngp=(other1, other2), ntk=(other1, other2),
                cov1=(other1, other1), cov2=(other2, other2))
  out = {field: contract(mat, n_batch, *consts[field])
         for field, mat, n_batch in _layout.arrays(k)}
  x1_is_x2 = k.x1_is_x2 and same
  if k.x1_is_x2 and not same:  # x2 = x1, but it now meets another constant
    n_cov = 1 if k.diagonal_batch else 2
    out["cov2"] = contract(k.cov1, n_cov, other2, other2)

  def finite(x, a):
    return lax.dot_general(*((a, x) if is_lhs else (x, a)), dimension_numbers,
                           precision=precision)

  def shape(s, a):
    return tuple(jax.eval_shape(finite, jax.ShapeDtypeStruct(s, a.dtype),
                                jax.ShapeDtypeStruct(a.shape, a.dtype)).shape)

  def mask(m, s, a):
    # Masked iff no unmasked input reaches the output with a nonzero weight:
    # a sum of nonnegative terms is zero only then.
    if m is None:
      return None
    full = list(s)
    full[c] = m.shape[c]
    keep = (~jnp.broadcast_to(m, full)).astype(a.dtype)
    return finite(keep, (a != 0).astype(a.dtype)) == 0

  mask2 = k.mask1 if k.mask2 is None and k.x1_is_x2 else k.mask2
  shape2 = k.shape1 if k.x1_is_x2 else k.shape2
  return k.replace(
      **out, x1_is_x2=x1_is_x2, is_reversed=False,
      batch_axis=out_axes.index(("in", b)),
      channel_axis=out_axes.index(("in", c)),
      shape1=shape(k.shape1, other1), shape2=shape(shape2, other2),
      mask1=mask(k.mask1, k.shape1, other1),
      mask2=None if x1_is_x2 else mask(mask2, shape2, other2))
