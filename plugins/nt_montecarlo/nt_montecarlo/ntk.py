"""Empirical (finite-width) NTK of any `f(params, x, **kwargs)`.

`Theta(x1, x2) = sum_p df(x1)/dp df(x2)/dp^T` over every leaf `p` of the
parameter pytree (Jacot et al. 2018), laid out and reduced over the output
axes as `_axes.Pairing` describes. Three implementations:

* Jacobian contraction: two reverse-mode Jacobians `J(x1)`, `J(x2)`
  (shape `f(x).shape + p.shape` per leaf), contracted leaf by leaf.
* NTK-vector products: `Theta v = J(x1) (J(x2)^T v)`, one VJP and one JVP per
  basis vector `v` of `f(x2)`'s output, which gives the full kernel over the
  output axes; traced and diagonal axes are then reduced.

Both give the same kernel up to floating-point round-off (the tests check
this to float64 precision).
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp

from nt_montecarlo import _args, _auto, _jit
from nt_montecarlo._axes import Axes, Pairing
from nt_montecarlo._structured import structured_ntk_fn
from nt_montecarlo.implementation import (DEFAULT_NTK_IMPLEMENTATION,
                                          NtkImplementation,
                                          canonical_implementation)

PyTree = Any
ApplyFn = Callable[..., PyTree]
EmpiricalKernelFn = Callable[..., PyTree]


def empirical_ntk_fn(
    f: ApplyFn,
    trace_axes: Axes = (-1,),
    diagonal_axes: Axes = (),
    vmap_axes: Any = None,
    implementation: Union[int, NtkImplementation] = DEFAULT_NTK_IMPLEMENTATION,
    _j_rules: bool = True,
    _s_rules: bool = True,
    _fwd: Optional[bool] = None,
) -> EmpiricalKernelFn:
  """Returns `ntk_fn(x1, x2, params, **apply_fn_kwargs)`: the empirical NTK.

  `Theta(x1, x2) = J(x1) J(x2)^T`, `J = df/dparams` summed over every leaf of
  the parameter pytree, divided by the size of the traced output axes.

  Args:
    f: `f(params, x, **kwargs) -> outputs`, any pytrees. For a list or tuple
      of outputs, each output gets its own kernel (cross terms are ignored,
      as in NT).
    trace_axes: output axes summed over (and divided by their size), absent
      from the result. The default `(-1,)` averages over logits/channels.
    diagonal_axes: output axes on which only matching positions are kept;
      present once in the result.
    vmap_axes: None, or `(in_axes, out_axes, kwargs_axes)` (a single value
      means `in_axes = out_axes = vmap_axes`) certifying that `f` acts on
      each slice of `x` along `in_axes` independently; Jacobians are then
      computed per example with `vmap`. Wrong when examples interact (e.g.
      BatchNorm): leave None then.
    implementation: an `NtkImplementation` or the int 0-3:
      `JACOBIAN_CONTRACTION` (1), `NTK_VECTOR_PRODUCTS` (2),
      `STRUCTURED_DERIVATIVES` (3), or `AUTO` (0), which picks one of them
      at trace time by a cost model calibrated on CPU only (see
      `NtkImplementation`).
    _j_rules, _s_rules, _fwd: NT's tuning switches of structured derivatives;
      accepted for compatibility and unused (our structured rules are always
      on; no forward-mode variant).

  Returns:
    `ntk_fn(x1, x2, params, **apply_fn_kwargs)`; `x2=None` means `x2 = x1`.
    Keywords are split between `x1` and `x2` as NT does (see `_args`). It is
    jitted internally (once per input shapes): array keywords are traced,
    other keywords are static and must be hashable. The
    kernel of outputs `(N, ..., C)` has the output axes in order, each
    untraced, non-diagonal axis twice (`x1`'s then `x2`'s): e.g. `(N1, N2)`
    for the defaults, `(N1, N2, C, C)` for `trace_axes=()`, `(N, C, C)` for
    `trace_axes=(), diagonal_axes=(0,)`.

  Warns:
    StructuredDerivativesWarning: (structured derivatives or AUTO choosing
      them) a parameter enters a primitive with no structured rule, or is
      read more than once; that leaf uses its plain Jacobian. Once per
      primitive per process.

  Raises:
    EstimatorArgumentError: `implementation` is not 0-3.
    ShapeError: axes outside the output, or traced/diagonal axes of different
      sizes in `f(x1)` and `f(x2)`.
  """
  del _j_rules, _s_rules, _fwd
  implementation = canonical_implementation(implementation)
  if implementation == NtkImplementation.NTK_VECTOR_PRODUCTS:
    ntk_fn = _ntk_vector_products_fn(f, trace_axes, diagonal_axes, vmap_axes)
  elif implementation == NtkImplementation.STRUCTURED_DERIVATIVES:
    ntk_fn = structured_ntk_fn(f, trace_axes, diagonal_axes, vmap_axes)
  elif implementation == NtkImplementation.JACOBIAN_CONTRACTION:
    ntk_fn = _jacobian_contraction_fn(f, trace_axes, diagonal_axes, vmap_axes)
  else:
    ntk_fn = _auto_fn(f, trace_axes, diagonal_axes, vmap_axes)
  return _jit.jit_kernel_fn(ntk_fn)


def _auto_fn(f, trace_axes, diagonal_axes, vmap_axes):
  fns = {
      NtkImplementation.JACOBIAN_CONTRACTION: _jacobian_contraction_fn,
      NtkImplementation.NTK_VECTOR_PRODUCTS: _ntk_vector_products_fn,
      NtkImplementation.STRUCTURED_DERIVATIVES: structured_ntk_fn,
  }

  def ntk_fn(x1: PyTree, x2: Optional[PyTree], params: PyTree,
             **apply_fn_kwargs) -> PyTree:
    """Empirical NTK by the implementation `_auto` picks (at trace time)."""
    prep = _args.prepare(f, apply_fn_kwargs, params, vmap_axes, x1, x2)
    implementation = _auto.choose(f, prep, params, x1, x2, trace_axes,
                                  diagonal_axes)
    return fns[implementation](f, trace_axes, diagonal_axes, vmap_axes)(
        x1, x2, params, **apply_fn_kwargs)

  return ntk_fn


def _jacobian_contraction_fn(f, trace_axes, diagonal_axes, vmap_axes):

  def contract(fx1, fx2, j1, j2):
    pairing = Pairing(fx1.shape, fx2.shape, trace_axes, diagonal_axes)
    terms = [pairing.contract(a, b, a.ndim - len(fx1.shape))
             for a, b in zip(jax.tree_util.tree_leaves(j1),
                             jax.tree_util.tree_leaves(j2))]
    if not terms:  # `params` holds no arrays: the NTK is zero.
      return jnp.zeros(pairing.shape, fx1.dtype)
    return functools.reduce(operator.add, terms)

  def ntk_fn(x1: PyTree, x2: Optional[PyTree], params: PyTree,
             **apply_fn_kwargs) -> PyTree:
    """Empirical NTK by Jacobian contraction; see `empirical_ntk_fn`."""
    prep = _args.prepare(f, apply_fn_kwargs, params, vmap_axes, x1, x2)

    def jacobian(x, kwargs):
      return jax.jacobian(_args.f_of_params(f, x, kwargs, prep))(params)

    if prep.vmapped:
      jacobian = jax.vmap(
          jacobian, in_axes=(prep.x_axis, prep.kw_in_axes(prep.kwargs1)),
          out_axes=prep.fx_axis)
    j1 = jacobian(x1, prep.kwargs1)
    j2 = j1 if _args.is_none(x2) else jacobian(x2, prep.kwargs2)
    return jax.tree_util.tree_map(contract, prep.fx1, prep.fx2, j1, j2)

  return ntk_fn


def _full_ntk(f, prep, params, x1, x2, kwargs1, kwargs2):
  """NTK over all output axes, `fx1.shape + fx2.shape` per output leaf."""
  f1 = _args.f_of_params(f, x1, kwargs1, prep)
  f2 = f1 if x2 is None else _args.f_of_params(f, x2, kwargs2, prep)
  fx1, jvp1 = jax.linearize(f1, params)
  fx2, vjp2 = jax.vjp(f2, params)
  leaves1, tree1 = jax.tree_util.tree_flatten(fx1)
  leaves2, tree2 = jax.tree_util.tree_flatten(fx2)

  blocks = []
  for i, (o1, o2) in enumerate(zip(leaves1, leaves2)):
    def column(e, i=i, o2=o2):
      # Cotangent `e` on output i of f(x2), zero on the others.
      cts = [e.reshape(o2.shape) if j == i else jnp.zeros_like(o)
             for j, o in enumerate(leaves2)]
      tangents = vjp2(jax.tree_util.tree_unflatten(tree2, cts))
      return jax.tree_util.tree_leaves(jvp1(*tangents))[i]

    cols = jax.vmap(column)(jnp.eye(o2.size, dtype=o2.dtype))
    cols = cols.reshape(o2.shape + o1.shape)
    n1, n2 = o1.ndim, o2.ndim
    blocks.append(jnp.transpose(cols, tuple(range(n2, n2 + n1)) +
                                tuple(range(n2))))
  return jax.tree_util.tree_unflatten(tree1, blocks)


def _ntk_vector_products_fn(f, trace_axes, diagonal_axes, vmap_axes):

  def ntk_fn(x1: PyTree, x2: Optional[PyTree], params: PyTree,
             **apply_fn_kwargs) -> PyTree:
    """Empirical NTK by NTK-vector products; see `empirical_ntk_fn`."""
    prep = _args.prepare(f, apply_fn_kwargs, params, vmap_axes, x1, x2)
    full = functools.partial(_full_ntk, f, prep, params)
    if prep.vmapped:
      # One (x1[i], x2[j]) pair at a time: inner vmap over x1, outer over x2.
      x2 = x1 if _args.is_none(x2) else x2
      inner = jax.vmap(
          full, in_axes=(prep.x_axis, None, prep.kw_in_axes(prep.kwargs1),
                         None),
          out_axes=prep.fx_axis)
      outer_axes = jax.tree_util.tree_map(lambda a, s: a + len(s.shape),
                                          prep.fx_axis, prep.fx1)
      outer = jax.vmap(
          inner, in_axes=(None, prep.x_axis, None,
                          prep.kw_in_axes(prep.kwargs2)),
          out_axes=outer_axes)
      ntk = outer(x1, x2, prep.kwargs1, prep.kwargs2)
    else:
      ntk = full(x1, None if _args.is_none(x2) else x2, prep.kwargs1,
                 prep.kwargs2)
    return jax.tree_util.tree_map(
        lambda fx1, fx2, k: Pairing(fx1.shape, fx2.shape, trace_axes,
                                    diagonal_axes).reduce(k),
        prep.fx1, prep.fx2, ntk)

  return ntk_fn


def empirical_ntk_vp_fn(f: ApplyFn, x1: PyTree, x2: Optional[PyTree],
                        params: PyTree, **apply_fn_kwargs
                        ) -> Callable[[PyTree], PyTree]:
  """Returns `ntk_vp_fn(cotangents)`: NTK-vector products, no NTK stored.

  `ntk_vp_fn(v) = J(x1) (J(x2)^T v)`: one VJP through `f(params, x2)` and one
  JVP through `f(params, x1)`, i.e. the cost of a few forward passes and the
  memory of one VJP (Novak et al. 2022, section L). This is
  `Theta(x1, x2) @ v` for the full kernel (no traced or diagonal axes).

  Args:
    f: `f(params, x, **kwargs)`.
    x1: first batch of inputs.
    x2: second batch; None means `x2 = x1`.
    params: the parameter pytree at which the NTK is taken.
    **apply_fn_kwargs: keywords of `f`, split between `x1` and `x2` like in
      `empirical_ntk_fn`.

  Returns:
    `ntk_vp_fn(cotangents)`: `cotangents` has the structure and shapes of
    `f(params, x2)`; the result those of `f(params, x1)`. JIT it yourself.
  """
  prep = _args.prepare(f, apply_fn_kwargs, params, None, x1, x2)
  f1 = _args.f_of_params(f, x1, prep.kwargs1, prep)
  f2 = f1 if _args.is_none(x2) else _args.f_of_params(f, x2, prep.kwargs2,
                                                      prep)

  def ntk_vp_fn(cotangents: PyTree) -> PyTree:
    """`Theta(x1, x2) @ cotangents`, shaped like `f(params, x1)`."""
    _, vjp2 = jax.vjp(f2, params)
    return jax.jvp(f1, (params,), vjp2(cotangents))[1]

  return ntk_vp_fn
