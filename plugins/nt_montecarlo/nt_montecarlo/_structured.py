"""Empirical NTK by structured derivatives (Novak et al. 2022, ICML).

For every parameter leaf `W`, follow it through `f`'s jaxpr (`_program`)
while each equation is linear in it and has a rule (`_structured_rules`):
`W -> z_1 -> ... -> y`. Then, by the chain rule,

  `Theta_W = (df/dy)_1 [(dy/dW)_1 (dy/dW)_2^T] (df/dy)_2^T`,

and the middle factor is contracted in closed form, one einsum per leaf
(e.g. `(x1 x2^T) (x) I` for `y = x W`), so the Jacobian with respect to `W`
itself is never formed: only `df/dy` (one reverse-mode Jacobian of `f` with
respect to all the `y`s at once) and the primitives' other operands.

A leaf whose first use has no rule, or that is read more than once, ends its
walk where it stands: `y = W`, i.e. the plain Jacobian of that leaf. A
`StructuredDerivativesWarning` names the primitive, once per name per
process.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import warnings
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from nt_montecarlo import _args, _program
from nt_montecarlo._axes import Pairing, chunks
from nt_montecarlo._structured_rules import RULES

PyTree = Any


class StructuredDerivativesWarning(UserWarning):
  """A parameter falls back to its plain Jacobian in structured derivatives."""


_WARNED: set = set()


def _warn_once(key: str, message: str) -> None:
  if key not in _WARNED:
    _WARNED.add(key)
    warnings.warn(message, StructuredDerivativesWarning, stacklevel=2)


@dataclasses.dataclass
class Chain:
  """Where a leaf's walk ended: variable `end` (`y`), its einsum labels,
  the factors collected on the way and the primitives passed."""
  end: int
  labels: list
  factors: list
  prims: tuple


def follow(prog: _program.Program, var: int, labels: list, alloc,
           limit: Optional[int] = None) -> Chain:
  """Walks parameter variable `var` (labels `labels`) through `prog`."""

  def shape(atom):
    if isinstance(atom, _program.Lit):
      return tuple(np.shape(atom.val))
    return tuple(prog.avals[atom].shape)

  factors, prims = [], []
  while limit is None or len(prims) < limit:
    if var in prog.outvars:
      break
    if prog.uses[var] > 1:
      names = sorted({prog.eqns[i].prim.name for i in prog.consumers[var]})
      _warn_once("<several uses>", (
          f"Structured derivatives: a parameter (or a linear function of it) "
          f"is read by {prog.uses[var]} operations ({', '.join(names)}); its "
          f"NTK term uses the plain Jacobian of that value instead."))
      break
    if not prog.uses[var]:
      break
    eqn = prog.eqns[prog.consumers[var][0]]
    rule = RULES.get(eqn.prim.name)
    step = rule(eqn, eqn.invars.index(var), labels, shape, alloc) if rule \
        else None
    if step is None:
      _warn_once(eqn.prim.name, (
          f"Structured derivatives have no rule for primitive "
          f"'{eqn.prim.name}' applied to a parameter; its NTK term uses the "
          f"plain Jacobian there (same kernel, less speed-up)."))
      break
    var, labels = eqn.outvars[0], step.labels
    factors += step.factors
    prims.append(eqn.prim.name)
    if step.final:
      break
  return Chain(var, list(labels), factors, tuple(prims))


def _is_array(v) -> bool:
  leaves = jax.tree_util.tree_leaves(v)
  return bool(leaves) and all(
      isinstance(l, (jax.Array, np.ndarray, np.generic)) for l in leaves)


def _drop_axis(tree, axes):
  """Shape structs of one example: `axes` (a tree of ints, or None) removed."""
  def one(a, ax):
    shape = list(np.shape(a))
    if ax is not None:
      del shape[ax]
    return jax.ShapeDtypeStruct(tuple(shape), a.dtype)
  if axes is None:
    return jax.tree_util.tree_map(lambda a: one(a, None), tree)
  return jax.tree_util.tree_map(one, tree, axes)


class _Side:
  """One side (`x1` or `x2`) of the kernel: its program and walks."""

  def __init__(self, f, prep, params, x, kwargs, wlabels, alloc):
    self.leaves, treedef = jax.tree_util.tree_flatten(params)
    self.dyn = {k: v for k, v in kwargs.items() if _is_array(v)}
    static = {k: v for k, v in kwargs.items() if k not in self.dyn}
    self.x, self.prep = x, prep

    def g(leaves, x, dyn):
      p = jax.tree_util.tree_unflatten(treedef, leaves)
      return jax.tree_util.tree_leaves(
          _args.f_of_params(f, x, {**static, **dyn}, prep)(p))

    xs = _drop_axis(x, prep.x_axis if prep.vmapped else None)
    dyns = {k: _drop_axis(v, prep.kw_axes.get(k)) for k, v in self.dyn.items()}
    self.prog = _program.trace(g, _drop_axis(self.leaves, None), xs, dyns)
    self.wlabels, self.alloc = wlabels, alloc
    self.walk()

  def walk(self, limits=None):
    limits = limits or [None] * len(self.leaves)
    self.chains = [follow(self.prog, v, list(l), self.alloc, n) for v, l, n
                   in zip(self.prog.invars, self.wlabels, limits)]

  def values(self):
    """`df/dy` per output and leaf (`J[out][leaf]`), and the factors."""
    prog, chains = self.prog, self.chains

    def jac(x, dyn):
      def fn(eps):
        perturb = {}
        for c, e in zip(chains, eps):
          perturb[c.end] = perturb.get(c.end, 0) + e
        args = (self.leaves + jax.tree_util.tree_leaves(x)
                + jax.tree_util.tree_leaves(dyn))
        outs, env = prog.evaluate(args, perturb)
        return outs, [[jnp.asarray(fa.fn(env)) for fa in c.factors]
                      for c in chains]
      zeros = [jnp.zeros(prog.avals[c.end].shape, prog.avals[c.end].dtype)
               for c in chains]
      return jax.jacrev(fn, has_aux=True)(zeros)

    if self.prep.vmapped:
      jac = jax.vmap(jac, in_axes=(self.prep.x_axis,
                                   self.prep.kw_in_axes(self.dyn)))
    return jac(self.x, self.dyn)


def walks(f, params: PyTree, x: PyTree, **kwargs) -> list:
  """The primitives each parameter leaf is followed through (for tests and
  debugging): `()` means its plain Jacobian is used."""
  prep = _args.prepare(f, kwargs, params, None, x, None)
  alloc = functools.partial(next, itertools.count())
  wlabels = [[alloc() for _ in np.shape(l)]
             for l in jax.tree_util.tree_leaves(params)]
  side = _Side(f, prep, params, x, prep.kwargs1, wlabels, alloc)
  return [c.prims for c in side.chains]


def _sides(f, prep, params, x1, x2):
  """Both sides' programs and walks; walks that differ are cut to `()`."""
  fx1 = jax.tree_util.tree_leaves(prep.fx1)
  top = 2 * max([len(o.shape) for o in fx1] + [0])
  alloc = functools.partial(next, itertools.count(top))
  wlabels = [[alloc() for _ in np.shape(l)]
             for l in jax.tree_util.tree_leaves(params)]
  same = _args.is_none(x2)
  s1 = _Side(f, prep, params, x1, prep.kwargs1, wlabels, alloc)
  s2 = _Side(f, prep, params, x1 if same else x2,
             prep.kwargs1 if same else prep.kwargs2, wlabels, alloc)
  if any(a.prims != b.prims for a, b in zip(s1.chains, s2.chains)):
    # `f` is traced differently for x1 and x2: keep the walks that agree.
    limits = [len(a.prims) if a.prims == b.prims else 0
              for a, b in zip(s1.chains, s2.chains)]
    s1.walk(limits)
    s2.walk(limits)
  return s1, s2, same


def _einsums(prep, s1, s2, vals1, vals2, trace_axes, diagonal_axes):
  """Yields `(output index, leaf index, pairing, interleaved einsum
  operands)` for each output and parameter leaf; `vals` are
  `_Side.values()` (or their shapes)."""
  fx1 = jax.tree_util.tree_leaves(prep.fx1)
  fx2 = jax.tree_util.tree_leaves(prep.fx2)
  axes = (jax.tree_util.tree_leaves(prep.fx_axis) if prep.vmapped
          else [None] * len(fx1))
  for i, (o1, o2, b) in enumerate(zip(fx1, fx2, axes)):
    pairing = Pairing(o1.shape, o2.shape, trace_axes, diagonal_axes)
    for k, (c1, c2) in enumerate(zip(s1.chains, s2.chains)):
      ops = []
      for c, (j, g), sub in ((c1, vals1, pairing.sub1),
                             (c2, vals2, pairing.sub2)):
        ex = [] if b is None else [sub[b]]
        out = ex + [s for d, s in enumerate(sub) if d != b]
        ops += [j[i][k], out + c.labels]
        for fa, val in zip(c.factors, g[k]):
          ops += [val, ex + fa.labels]
      yield i, k, pairing, ops


def _canonical(prep):
  if prep.vmapped and prep.fx_axis is None:
    # Unbatched outputs: per-example walks would not line up with them.
    return dataclasses.replace(prep, x_axis=None, kw_axes={})
  return prep


def einsum_specs(f, prep, params, x1, x2, trace_axes, diagonal_axes):
  """`(operands, out)` of every einsum `structured_ntk_fn` would run, with
  operands as `(shape, labels)`; for the cost model of `_auto`."""
  prep = _canonical(prep)
  s1, s2, same = _sides(f, prep, params, x1, x2)
  vals1 = jax.eval_shape(s1.values)
  vals2 = vals1 if same else jax.eval_shape(s2.values)
  for _, _, pairing, ops in _einsums(prep, s1, s2, vals1, vals2,
                                     trace_axes, diagonal_axes):
    yield [(tuple(a.shape), l) for a, l in zip(ops[::2], ops[1::2])], \
        pairing.out


def _einsum_in_slices(ops, out, wlabels, fx):
  """`jnp.einsum(*ops, out)`, summed over slices of the leaf's largest
  label when its plain Jacobian `fx.shape + W.shape` is large.

  The optimal contraction order often forms that Jacobian (e.g. for a
  convolution kernel, `df/dy` against the input patches) and then its Gram
  matrix, which holds it in two layouts; `W`'s labels are summed over, so
  slicing every operand along one of them splits the sum exactly. See
  `_axes.chunks` for the slice size.
  """
  sizes = {}
  for operand, labels in zip(ops[::2], ops[1::2]):
    sizes.update(zip(labels, np.shape(operand)))
  present = [l for l in wlabels if l in sizes and l not in out]
  if not present:
    return jnp.einsum(*ops, out, optimize="optimal")
  label = max(present, key=sizes.get)
  nbytes = (np.prod(fx.shape, dtype=np.int64)
            * np.prod([sizes[l] for l in present], dtype=np.int64)
            * jnp.dtype(fx.dtype).itemsize)
  terms = []
  for lo, hi in chunks(sizes[label], int(nbytes)):
    sliced = []
    for operand, labels in zip(ops[::2], ops[1::2]):
      for ax, l in enumerate(labels):
        if l == label:
          operand = jax.lax.slice_in_dim(operand, lo, hi, axis=ax)
      sliced += [operand, labels]
    terms.append(jnp.einsum(*sliced, out, optimize="optimal"))
  return functools.reduce(operator.add, terms)


def structured_ntk_fn(f, trace_axes, diagonal_axes, vmap_axes):
  """`ntk_fn(x1, x2, params, **kwargs)` by structured derivatives."""

  def ntk_fn(x1: PyTree, x2: Optional[PyTree], params: PyTree,
             **apply_fn_kwargs) -> PyTree:
    """Empirical NTK by structured derivatives; see `empirical_ntk_fn`."""
    prep = _canonical(
        _args.prepare(f, apply_fn_kwargs, params, vmap_axes, x1, x2))
    s1, s2, same = _sides(f, prep, params, x1, x2)
    vals1 = s1.values()
    vals2 = vals1 if same else s2.values()
    fx1 = jax.tree_util.tree_leaves(prep.fx1)
    kernels = [jnp.zeros(Pairing(o1.shape, o2.shape, trace_axes,
                                 diagonal_axes).shape, o1.dtype)
               for o1, o2 in zip(fx1, jax.tree_util.tree_leaves(prep.fx2))]
    for i, k, pairing, ops in _einsums(prep, s1, s2, vals1, vals2,
                                       trace_axes, diagonal_axes):
      kernels[i] = kernels[i] + _einsum_in_slices(
          ops, pairing.out, s1.wlabels[k], fx1[i]) / pairing.size
    return jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(prep.fx1), kernels)

  return ntk_fn
