"""Structure of primitive Jacobians, as einsum index bookkeeping.

Follow a parameter `W` through equations `z -> y = p(z, other)` that are
linear in `z`. Each step expresses `dy/dz` as a tensor network: `y`'s axes
get labels, and `other`'s value may join as an einsum factor. A label
inherited from `W` is *shared*: the two Jacobians of the NTK product
`(dy/dW)_1 (dy/dW)_2^T` carry the same label there, so it is summed over
the pair (the parameter sum). A *fresh* label is private to one side.
Composing the steps gives `Theta_W = J_1 M J_2^T` with `J = df/dy` and the
middle factor `M = (dy/dW)_1 (dy/dW)_2^T` never formed: one einsum
contracts it (Novak et al. 2022, "Fast Finite Width NTK", section 3.3).

Every rule is `rule(eqn, pos, labels, shape, alloc) -> Step | None`:
`pos` is where `z` enters `eqn`, `labels` are `z`'s labels, `shape(atom)`
gives an operand's shape and `alloc()` a fresh label. `None` means "not
linear in this operand": the caller stops there.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import jax.numpy as jnp
from jax import lax

from nt_montecarlo._program import Lit


def read(env: dict, atom):
  """Value of a program operand in `env`."""
  return atom.val if isinstance(atom, Lit) else env[atom]


@dataclasses.dataclass
class Factor:
  """An einsum operand `fn(env)` with one label per axis."""
  fn: Callable[[dict], object]
  labels: list


@dataclasses.dataclass
class Step:
  """`y`'s labels, the factors the step adds, and whether to stop there."""
  labels: list
  factors: list
  final: bool


def _operand(atom, labels) -> Factor:
  return Factor(lambda env: read(env, atom), list(labels))


def identity(eqn, pos, labels, shape, alloc):
  """`y = z` (dtype casts, copies): `dy/dz = I`, labels kept."""
  del eqn, pos, shape, alloc
  return Step(list(labels), [], final=False)


def neg(eqn, pos, labels, shape, alloc):
  """`y = -z`: a factor `-1` on each side, so `M = (-1)^2 I = I`."""
  del pos, shape, alloc
  return Step(list(labels), [Factor(lambda env: -1., [])], final=False)


def _broadcast(zs, ys, labels, alloc) -> list:
  """Labels of `y` when `z` (labels `labels`) is broadcast to `y`'s shape:
  `z`'s axes of the same size keep theirs, broadcast ones get fresh ones."""
  if not zs:
    return [alloc() for _ in ys]
  return [l if a == b else alloc() for l, a, b in zip(labels, zs, ys)]


def mul(eqn, pos, labels, shape, alloc):
  """`y = z * x` (elementwise, size-1 axes broadcast): `dy/dz = diag(x)`.

  `Theta_z = sum_k J1[.., k] x1[k] x2[k] J2[.., k]`: `x` joins with `y`'s
  labels, and axes where `z` is broadcast get fresh labels (`M = 1 1^T`
  there). A scalar `x` is a scale and the walk goes on.
  """
  other = eqn.invars[1 - pos]
  zs, xs, ys = shape(eqn.invars[pos]), shape(other), shape(eqn.outvars[0])
  ylabels = _broadcast(zs, ys, labels, alloc)
  if not xs:
    return Step(ylabels, [_operand(other, [])], final=False)
  return Step(ylabels, [_operand(other, _broadcast(xs, ys, ylabels, alloc))],
              final=True)


def div(eqn, pos, labels, shape, alloc):
  """`y = z / x`: `mul` by `1/x`; not linear in a denominator `z`."""
  if pos != 0:
    return None
  other = eqn.invars[1]
  zs, xs, ys = shape(eqn.invars[0]), shape(other), shape(eqn.outvars[0])
  ylabels = _broadcast(zs, ys, labels, alloc)
  xlabels = _broadcast(xs, ys, ylabels, alloc) if xs else []
  inv = Factor(lambda env: 1. / read(env, other), xlabels)
  return Step(ylabels, [inv], final=bool(xs))


def add(eqn, pos, labels, shape, alloc):
  """`y = z + x`, `x - z` (a bias): `dy/dz = +-I` on `z`'s axes; axes
  where `z` is broadcast get fresh labels, so `M = 1 1^T` there."""
  zs, ys = shape(eqn.invars[pos]), shape(eqn.outvars[0])
  factors = ([Factor(lambda env: -1., [])]
             if eqn.prim.name == "sub" and pos == 1 else [])
  return Step(_broadcast(zs, ys, labels, alloc), factors, final=True)


def transpose(eqn, pos, labels, shape, alloc):
  """`y = z.transpose(perm)`: labels permuted."""
  del pos, shape, alloc
  return Step([labels[p] for p in eqn.params["permutation"]], [],
              final=False)


def broadcast_in_dim(eqn, pos, labels, shape, alloc):
  """`y = broadcast(z)`: `z`'s axes keep their labels, new (or size-1 to
  size-n) axes get fresh ones, so `M = 1 1^T` over them (a bias)."""
  del pos
  zs = shape(eqn.invars[0])
  dims = eqn.params["broadcast_dimensions"]
  out = []
  for d, size in enumerate(eqn.params["shape"]):
    i = dims.index(d) if d in dims else None
    out.append(labels[i] if i is not None and zs[i] == size else alloc())
  return Step(out, [], final=False)


def reshape(eqn, pos, labels, shape, alloc):
  """`y = z.reshape(...)` that only adds or drops size-1 axes: labels of the
  other axes kept. Other reshapes are not handled (`None`)."""
  del pos
  zs, ys = shape(eqn.invars[0]), tuple(eqn.params["new_sizes"])
  if [s for s in zs if s != 1] != [s for s in ys if s != 1]:
    return None
  kept = iter(l for l, s in zip(labels, zs) if s != 1)
  return Step([alloc() if s == 1 else next(kept) for s in ys], [],
              final=False)


def squeeze(eqn, pos, labels, shape, alloc):
  """`y = z.squeeze(dims)`: those (size-1) labels dropped."""
  del pos, shape, alloc
  dims = eqn.params["dimensions"]
  return Step([l for i, l in enumerate(labels) if i not in dims], [],
              final=False)


def dot_general(eqn, pos, labels, shape, alloc):
  """`y = dot_general(x, W)` (or `(W, x)`): `y[b, i, j] = sum_k x[b, i, k]
  W[b, k, j]`, so `M = (x1 x2^T over k) (x) I_j`, batched over `b`.

  `W`'s batch, contracting and free axes keep their labels; `x`'s free axes
  get fresh labels, shared by `x` and `y`: `Theta_W = sum J1[i1, j]
  x1[i1, k] x2[i2, k] J2[i2, j]` (a dense layer: `(x1 . x2) I`).
  """
  (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
  other = eqn.invars[1 - pos]
  zc, xc = (lc, rc) if pos == 0 else (rc, lc)
  zb, xb = (lb, rb) if pos == 0 else (rb, lb)
  xlabels, xfree = [], []
  for d in range(len(shape(other))):
    if d in xc:
      xlabels.append(labels[zc[xc.index(d)]])
    elif d in xb:
      xlabels.append(labels[zb[xb.index(d)]])
    else:
      xlabels.append(alloc())
      xfree.append(xlabels[-1])
  zfree = [l for d, l in enumerate(labels) if d not in zc and d not in zb]
  ylabels = [labels[d] for d in zb]
  ylabels += zfree + xfree if pos == 0 else xfree + zfree
  return Step(ylabels, [_operand(other, xlabels)], final=True)


def conv_general_dilated(eqn, pos, labels, shape, alloc):
  """`y = conv(x, W)`: a dense layer on the patches `P` of `x`,
  `y[n, s, o] = sum_{c, k} P[n, s, c, k] W[k, c, o]`, so
  `M = (P1 P2^T over c, k) (x) I_o` (`lax.conv_general_dilated_patches`).

  Only the filter (`rhs`) of an ungrouped convolution is handled.
  """
  p = eqn.params
  if pos != 1 or p["feature_group_count"] != 1 or p["batch_group_count"] != 1:
    return None
  lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
  rhs_shape = shape(eqn.invars[1])
  filt = tuple(rhs_shape[d] for d in rhs_spec[2:])
  x = eqn.invars[0]
  ylabels = [None] * len(out_spec)
  for d in [out_spec[0]] + list(out_spec[2:]):
    ylabels[d] = alloc()
  ylabels[out_spec[1]] = labels[rhs_spec[0]]
  feature = [labels[rhs_spec[1]]] + [labels[d] for d in rhs_spec[2:]]
  plabels = [l for d, l in enumerate(ylabels) if d != out_spec[1]] + feature

  def patches(env):
    xv = read(env, x)
    dn = lax.ConvDimensionNumbers(lhs_spec, rhs_spec, out_spec)
    pt = lax.conv_general_dilated_patches(
        xv, filt, p["window_strides"], p["padding"], p["lhs_dilation"],
        p["rhs_dilation"], dn, precision=p["precision"])
    pt = jnp.moveaxis(pt, out_spec[1], -1)
    return pt.reshape(pt.shape[:-1] + (xv.shape[lhs_spec[1]],) + filt)

  return Step(ylabels, [Factor(patches, plabels)], final=True)


RULES: dict[str, Callable[..., Optional[Step]]] = {
    "convert_element_type": identity, "copy": identity, "copy_p": identity,
    "neg": neg, "mul": mul, "div": div, "add": add, "sub": add,
    "add_any": add, "transpose": transpose,
    "broadcast_in_dim": broadcast_in_dim, "reshape": reshape,
    "squeeze": squeeze, "dot_general": dot_general,
    "conv_general_dilated": conv_general_dilated,
}
