"""Sigmoidal nonlinearities: Erf, Sigmoid_like and Gelu.

For `(u, v) ~ N(0, [[q1, c], [c, q2]])` every rule below is a closed form of
`E[phi(u) phi(v)]` (the NNGP) and `E[phi'(u) phi'(v)]` (the factor the NTK is
multiplied by); the second is the derivative of the first in `c` (Price's
theorem), which is how the NTK lines were checked.

Erf (Williams 1997):

    E[erf(u) erf(v)]   = (2 / pi) arcsin(2 c / sqrt((1 + 2 q1) (1 + 2 q2)))
    E[erf'(u) erf'(v)] = (4 / pi) / sqrt((1 + 2 q1) (1 + 2 q2) - 4 c^2)

GELU `x Phi(x)` (Tsuchida et al. 2020, arXiv:2002.08517): writing
`Phi(u) = P(w1 <= u)` with an independent `w1 ~ N(0, 1)` turns the NNGP into
a second moment of `(u, v)` over the quadrant `u > w1, v > w2`; with
`P = q1 q2`, `P1 = (1 + q1) (1 + q2)`, `D = sqrt(P1 - c^2)` and
`theta = arctan2(c, D)` (that is, `arcsin(c / sqrt(P1))`):

    E[gelu(u) gelu(v)]   = c / 4 + (c theta + (c^2 + P D^2) / (P1 D)) / (2 pi)
    E[gelu'(u) gelu'(v)] = 1 / 4 + theta / (2 pi)
                           + c / (2 pi D) (1 / D^2 + (1 - P) / P1 + 1)

Both stay finite for zero-norm inputs: `1 + 2 q1 + 2 q2 <= (1 + 2 q1)(1 + 2 q2)
- 4 c^2` and `1 + q1 + q2 <= D^2`, so no denominator can vanish.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from ntcore import Requirements, elementwise_layer, kernel_ops

# Erf(c != 0) shifts its output, so a masked position no longer has zero
# covariance; like NT, zero it again after the rule.
_REMASK = Requirements(gaussian_input=True, remask=True)

_SIGMOID_SCALE = 2.4020563531719796


def _gram(cov, var_a, var_b):
  """`(q1 q2 - c^2) / (q1 q2)`, in [0, 1], without overflow.

  The three entries are divided by their largest first, so the products
  stay <= 1 whatever the input scale, and where `c == q1 == q2` bit for bit
  (the same example twice) the difference is exactly 0.
  """
  m = jnp.maximum(jnp.maximum(var_a, var_b), jnp.abs(cov))
  m = jnp.where(m > 0, m, 1)
  qa, qb, cc = var_a / m, var_b / m, cov / m
  prod = qa * qb
  ok = prod > 0
  g = kernel_ops.gram(cc, qa, qb) / jnp.where(ok, prod, 1)
  # Round-off negatives become 0 by `where`, not `clip`: at the minimum g = 0
  # (x1 == x2) clip's derivative is 1/2, which would halve the kernel's second
  # derivatives there.
  return jnp.where(ok, jnp.where(g < 0, 0., g), 1)


def _erf_dual(a: float, b: float, c: float):
  b2 = b ** 2

  def fn(cov, var_a, var_b, ntk):
    # With s_i = 1 + 2 b^2 q_i, e_i = 1 / s_i and t_i = 2 b^2 q_i / s_i,
    #   det / (s1 s2) = 1 - 4 b^4 c^2 / (s1 s2) = e1 + e2 t1 + t1 t2 g,
    # g = (q1 q2 - c^2) / (q1 q2) (`_gram`): a sum of non-negative terms, so
    # nothing cancels or overflows (float32 large inputs), and on the
    # x1 == x2 diagonal g = 0 exactly.
    s1, s2 = 1 + 2 * b2 * var_a, 1 + 2 * b2 * var_b
    r1, r2 = jnp.sqrt(s1), jnp.sqrt(s2)
    t1, t2 = 2 * b2 * var_a / s1, 2 * b2 * var_b / s2
    det_n = 1 / s1 + t1 / s2 + t1 * t2 * _gram(cov, var_a, var_b)
    root_n = jnp.sqrt(det_n)
    rho = 2 * b2 * (cov / r1) / r2  # = 2 b^2 c / sqrt(s1 s2), in [-1, 1]
    out = a ** 2 * (2 / np.pi) * jnp.arctan2(rho, root_n) + c ** 2
    if ntk is None:
      return out, None
    # (4 / pi) / sqrt(det), as (4 / pi) / (r1 r2 sqrt(det / (s1 s2))).
    return out, ntk * (a ** 2 * b2 * (4 / np.pi) / r1 / r2 / root_n)

  def diag(var):  # c = q1 = q2: det / s^2 = (1 + 4 b^2 q) / s^2 = e (1 + t)
    s = 1 + 2 * b2 * var
    t = 2 * b2 * var / s
    return a ** 2 * (2 / np.pi) * jnp.arctan2(t, jnp.sqrt((1 + t) / s)) + c ** 2

  return fn, diag


def _erf_layer(name: str, a: float, b: float, c: float):
  fn, diag = _erf_dual(a, b, c)

  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, fn, diag)

  return elementwise_layer(name, lambda x: a * erf(b * x) + c, rule, _REMASK)


def Erf(a: float = 1., b: float = 1., c: float = 0.):
  """`a * erf(b * x) + c`; arcsine kernel (Williams 1997).

  Args:
    a: output scale.
    b: input scale.
    c: output shift.

  Kernel: with `q -> b^2 q` on the inputs, `nngp' = a^2 (2 / pi)
  arcsin(2 c / sqrt((1 + 2 q1)(1 + 2 q2))) + c^2` (the cross term vanishes
  because erf is odd) and `ntk' = ntk a^2 b^2 (4 / pi) / sqrt((1 + 2 q1)(1 +
  2 q2) - 4 c^2)`; computed with `arctan2` so that `|arcsin|`'s argument
  never leaves [-1, 1] by round-off, and from quantities normalised by
  `(1 + 2 q1)(1 + 2 q2)` so that large inputs (float32 norms of 1e6 and
  more) neither overflow nor cancel.
  """
  return _erf_layer("Erf", a, b, c)


def Sigmoid_like():
  """`0.5 * erf(x / 2.4020563531719796) + 0.5`, an Erf close to the sigmoid.

  The constant minimizes the squared difference to the logistic sigmoid on
  [-5, 5] (as in NT).
  """
  return _erf_layer("Sigmoid_like", 0.5, 1 / _SIGMOID_SCALE, 0.5)


def _gelu_dual():
  def fn(cov, var_a, var_b, ntk):
    prod = var_a * var_b
    prod1 = (1 + var_a) * (1 + var_b)
    d2 = 1 + var_a + var_b + (prod - cov ** 2)  # = prod1 - c^2, see Erf
    d = kernel_ops.safe_sqrt(d2)
    theta = jnp.arctan2(cov, d)
    out = cov / 4 + (cov * theta + (cov ** 2 + prod * d2) / (prod1 * d)) / (
        2 * np.pi)
    if ntk is None:
      return out, None
    dot = 0.25 + theta / (2 * np.pi) + cov / (2 * np.pi * d) * (
        1 / d2 + (1 - prod) / prod1 + 1)
    return out, ntk * dot

  def diag(var):  # c = q1 = q2: D^2 = 1 + 2 q
    root = jnp.sqrt(1 + 2 * var)
    return var * (0.25 + (jnp.arctan2(var, root) / 2
                          + var / ((1 + var) * root)) / np.pi)

  return fn, diag


def Gelu(approximate: bool = False):
  """GELU `x * Phi(x)`, Phi the standard normal CDF (Hendrycks & Gimpel 2016).

  Args:
    approximate: finite width only: `apply_fn` uses the tanh approximation
      of `jax.nn.gelu`. The kernel is the exact GELU kernel either way (as in
      NT), so with `approximate=True` a finite network differs from its
      kernel by the approximation error (about 1e-3 in `phi`).

  Kernel (Tsuchida et al. 2020): see the module docstring; the NNGP is
  `c / 4 + (c theta + (c^2 + q1 q2 D^2) / ((1 + q1)(1 + q2) D)) / (2 pi)`,
  `D^2 = (1 + q1)(1 + q2) - c^2`, `theta = arctan2(c, D)`.
  """
  fn, diag = _gelu_dual()

  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, fn, diag)

  return elementwise_layer(
      "Gelu", lambda x: jax.nn.gelu(x, approximate=approximate), rule)
