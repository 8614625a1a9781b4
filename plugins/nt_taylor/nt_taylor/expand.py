"""Taylor expansions of `f(params, *args)` in `params` around fixed parameters."""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import jet


def _direction(params, p):
  return jax.tree_util.tree_map(lambda a, b: b - a, params, p)


def linearize(f: Callable[..., Any], params: Any) -> Callable[..., Any]:
  """First-order Taylor expansion of `f` in its parameters around `params`.

  `f_lin(p, *args, **kwargs) = f(params, *args) + J_f(params) (p - params)`,
  computed with one Jacobian-vector product (no Jacobian is materialized).
  Wide networks trained by gradient descent stay close to this model
  (Lee et al. 2019, eq. 5).

  Args:
    f: `f(params, *args, **kwargs)`; any pytree of parameters.
    params: the expansion point.

  Returns:
    `f_lin(p, *args, **kwargs)` with the signature of `f`.
  """

  def f_lin(p, *args, **kwargs):
    dp = _direction(params, p)
    out, tangent = jax.jvp(lambda q: f(q, *args, **kwargs), (params,), (dp,))
    return jax.tree_util.tree_map(jnp.add, out, tangent)

  return f_lin


def taylor_expand(f: Callable[..., Any], params: Any, degree: int
                  ) -> Callable[..., Any]:
  """Taylor expansion of `f` in its parameters to order `degree`.

  With `g(e) = f(params + e (p - params))`, returns
  `f_k(p) = sum_{j=0}^{degree} g^(j)(0) / j!`, exact for `f` polynomial in
  the parameters of degree <= `degree`. The derivatives of `g` come from
  one Taylor-mode pass (`jax.experimental.jet`, cost O(degree^2)); a
  function using a primitive without a Taylor rule falls back to nested
  Jacobian-vector products (cost O(2^degree)).

  Args:
    f: `f(params, *args, **kwargs)`.
    params: the expansion point.
    degree: order of the expansion, >= 0.

  Returns:
    `f_k(p, *args, **kwargs)` with the signature of `f`.
  """
  if degree < 0:
    raise ValueError(f"taylor_expand needs degree >= 0, got {degree}.")

  def expansion(p, *args, **kwargs):
    if not kwargs and all(isinstance(a, (jax.Array, np.ndarray))
                          for a in jax.tree_util.tree_leaves((p, args))):
      return jitted(p, *args)  # one compiled program instead of op-by-op jet
    return expand(p, *args, **kwargs)

  def expand(p, *args, **kwargs):
    dp = _direction(params, p)

    def g(e):
      q = jax.tree_util.tree_map(lambda a, d: a + e * d, params, dp)
      return f(q, *args, **kwargs)

    zero = jnp.zeros((), jax.tree_util.tree_leaves(params)[0].dtype)
    if degree == 0:
      return g(zero)
    try:
      out, series = jet.jet(g, (zero,), ((jnp.ones_like(zero),)
                                          + (jnp.zeros_like(zero),) * (degree - 1),))
      # jet returns, per output leaf, the list of its derivatives 1..degree.
      treedef = jax.tree_util.tree_structure(out)
      per_leaf = treedef.flatten_up_to(series)
      terms = [treedef.unflatten([s[j] for s in per_leaf])
               for j in range(degree)]
    except NotImplementedError:
      out, terms = _nested_jvp(g, zero, degree)
    total = out
    for j, term in enumerate(terms, start=1):
      total = jax.tree_util.tree_map(
          lambda t, d, j=j: t + d / math.factorial(j), total, term)
    return total

  jitted = jax.jit(expand)
  return expansion


def _nested_jvp(g, e0, degree):
  """`g(e0)` and its derivatives 1..degree by repeated forward mode."""
  derivs = []
  fn = g
  for _ in range(degree):
    fn = (lambda h: lambda e: jax.jvp(h, (e,), (jnp.ones_like(e),))[1])(fn)
    derivs.append(fn(e0))
  return g(e0), derivs
