"""Periodic nonlinearities: Sin, Cos, Rbf and Gabor.

All follow from the Gaussian characteristic function: for
`(u, v) ~ N(0, S)`, `S = [[q1, c], [c, q2]]`, and `t` in R^2,

    E[exp(i t.(u, v))] = exp(-t' S t / 2)

and, for Gabor, its damped form (a Gaussian integral)

    E[exp(-u^2 - v^2 + i t.(u, v))]
        = det(I + 2 S)^(-1/2) exp(-t' S (I + 2 S)^(-1) t / 2).

Products of sines become `cos(t.(u, v))` for `t = (1, -1)` and `(1, 1)`:
`sin x sin y = (cos(x - y) - cos(x + y)) / 2`. The NTK factor
`E[phi'(u) phi'(v)]` is the `c`-derivative of the NNGP (Price's theorem).
Every exponent below is <= 0 (because `|c| <= sqrt(q1 q2)`), so nothing
overflows, and all rules are finite for zero-norm inputs.
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from ntcore import Requirements, elementwise_layer, kernel_ops

# a sin(c) != 0 at x = 0, so masked positions must be zeroed again (as NT).
_REMASK = Requirements(gaussian_input=True, remask=True)


def _cosh_sinh(x, y):
  """`(exp(-x) cosh(y), exp(-x) sinh(y))` for `|y| <= x`, without overflow."""
  big = jnp.exp(jnp.abs(y) - x)
  m = -jnp.expm1(-2 * jnp.abs(y))  # 1 - exp(-2|y|), exact for small y
  return big * (1 - m / 2), jnp.sign(y) * big * m / 2


def _sin_dual(a: float, b: float, sin2: float, cos2: float):
  """Dual of `a sin(b x + phase)`; `sin2`, `cos2`: `sin(phase)^2`, `cos^2`."""
  b2 = b ** 2

  def fn(cov, var_a, var_b, ntk):
    ch, sh = _cosh_sinh(b2 * (var_a + var_b) / 2, b2 * cov)
    out = a ** 2 * (sin2 * ch + cos2 * sh)
    if ntk is None:
      return out, None
    return out, ntk * (a ** 2 * b2 * (sin2 * sh + cos2 * ch))

  def diag(var):
    m = -jnp.expm1(-2 * b2 * var)
    return a ** 2 * (sin2 * (1 - m / 2) + cos2 * m / 2)

  return fn, diag


def _sin_layer(name: str, a: float, b: float, sin2: float, cos2: float, fn):
  dual, diag = _sin_dual(a, b, sin2, cos2)

  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, dual, diag)

  return elementwise_layer(name, fn, rule, _REMASK)


def Sin(a: float = 1., b: float = 1., c: float = 0.):
  """`a * sin(b * x + c)`.

  Args:
    a: output scale.
    b: input scale.
    c: input phase shift.

  Kernel: for input variances `q1, q2` and covariance `q12` (`c` is the
  phase here), with `s = b^2 (q1 + q2) / 2` and `y = b^2 q12`,
  `nngp' = a^2 exp(-s) (sin^2(c) cosh(y) + cos^2(c) sinh(y))` — the same as
  `a^2 / 2 (exp(y - s) - cos(2 c) exp(-y - s))` without its cancellation —
  and `ntk' = ntk a^2 b^2 exp(-s) (sin^2(c) sinh(y) + cos^2(c) cosh(y))`.
  """
  sin2, cos2 = float(np.sin(c) ** 2), float(np.cos(c) ** 2)
  return _sin_layer("Sin", a, b, sin2, cos2, lambda x: a * jnp.sin(b * x + c))


def Cos(a: float = 1., b: float = 1., c: float = 0.):
  """`a * cos(b * x + c)`: Sin with phase `c + pi / 2`.

  The phase's `sin^2` and `cos^2` are taken as `cos(c)^2` and `sin(c)^2`
  exactly, rather than through the rounded `c + pi / 2`.
  """
  sin2, cos2 = float(np.cos(c) ** 2), float(np.sin(c) ** 2)
  return _sin_layer("Cos", a, b, sin2, cos2, lambda x: a * jnp.cos(b * x + c))


def Rbf(gamma: float = 1.0):
  """`sqrt(2) sin(sqrt(2 gamma) x + pi / 4)`, whose NNGP is the RBF kernel.

  Args:
    gamma: inverse squared length scale, `gamma = 1 / (2 l^2)`.

  Kernel: `nngp' = exp(-gamma (q1 + q2 - 2 c))`, which for the inputs of a
  Dense layer without bias is `exp(-gamma W_std^2 |x1 - x2|^2 / d)`;
  `ntk' = ntk 2 gamma nngp'`; `cov1' = 1`. (Sin with `a = sqrt(2)`,
  `b = sqrt(2 gamma)`, phase `pi / 4`, where `sin^2 = cos^2 = 1 / 2`.)
  """

  def dual(cov, var_a, var_b, ntk):
    out = jnp.exp(-gamma * (var_a + var_b - 2 * cov))
    return out, None if ntk is None else ntk * (2 * gamma * out)

  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, dual, jnp.ones_like)

  # Python floats keep the input's dtype (NumPy scalars would promote it).
  scale, root2 = float(np.sqrt(2 * gamma)), float(np.sqrt(2))
  return elementwise_layer(
      "Rbf", lambda x: root2 * jnp.sin(scale * x + np.pi / 4), rule, _REMASK)


def _gabor_dual():
  def fn(cov, var_a, var_b, ntk):
    s = var_a + var_b
    delta = 4 * kernel_ops.gram(cov, var_a, var_b)
    det = 1 + 2 * s + delta  # det(I + 2 S)
    # (E- - E+) / (2 sqrt(det)), E+- = exp(-(s + delta +- 2c) / (2 det)),
    # with the larger exponential factored out and expm1 for the rest.
    big = jnp.exp(-(s + delta - 2 * jnp.abs(cov)) / (2 * det))
    out = jnp.sign(cov) * big * -jnp.expm1(-2 * jnp.abs(cov) / det) / (
        2 * jnp.sqrt(det))
    if ntk is None:
      return out, None
    e_minus = jnp.exp(-(s + delta - 2 * cov) / (2 * det))
    e_plus = jnp.exp(-(s + delta + 2 * cov) / (2 * det))
    rhs = (1 + 4 * cov) * det + 4 * cov * (1 + s + 2 * cov)
    lhs = (1 - 4 * cov) * det - 4 * cov * (1 + s - 2 * cov)
    return out, ntk * (e_plus * lhs + e_minus * rhs) / (2 * det ** 2.5)

  def diag(var):  # delta = 0, det = 1 + 4 q
    det = 1 + 4 * var
    return -jnp.expm1(-2 * var / det) / (2 * jnp.sqrt(det))

  return fn, diag


def Gabor():
  """Gabor function `exp(-x^2) * sin(x)`.

  Kernel: with `s = q1 + q2`, `delta = 4 (q1 q2 - c^2)` and
  `det = det(I + 2 S) = 1 + 2 s + delta`,
  `nngp' = (exp(-(s + delta - 2 c) / (2 det)) - exp(-(s + delta + 2 c) /
  (2 det))) / (2 sqrt(det))`; `ntk'` multiplies `ntk` by its `c`-derivative,
  `(E+ ((1 - 4c) det - 4c (1 + s - 2c)) + E- ((1 + 4c) det + 4c (1 + s +
  2c))) / (2 det^(5/2))`, `E+-` the exponentials with `+-2c`.
  """
  fn, diag = _gabor_dual()

  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, fn, diag)

  return elementwise_layer("Gabor", lambda x: jnp.exp(-x ** 2) * jnp.sin(x),
                           rule)
