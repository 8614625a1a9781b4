"""Polynomial nonlinearities: Monomial, RectifiedMonomial, Polynomial, Hermite.

For `(u, v) ~ N(0, [[q1, c], [c, q2]])` write `u = sqrt(q1) x`, `v =
sqrt(q2) y` with `E[x y] = rho = c / sqrt(q1 q2)`, and expand in the
probabilists' Hermite polynomials, for which `E[He_l(x) He_m(y)] = delta_lm
l! rho^l` (Mehler). Since `x^n = sum_i n! / (2^i i! l!) He_l(x)` with
`l = n - 2i`, a polynomial `p(z) = sum_n a_n z^n` has

    E[p(u) p(v)]   = sum_l l! beta_l(q1) beta_l(q2) c^l,
    beta_l(q)      = sum_i a_(l+2i) (l+2i)! / (2^i i! l!) q^i,

a polynomial in `(c, q1, q2)` with no square root, so zero variances need no
care. Its derivative in `c` is `E[p'(u) p'(v)]` (Price's theorem), which
gives the NTK.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import jax.numpy as jnp

from ntcore import Requirements, elementwise_layer, kernel_ops

# Nonlinearities with p(0) != 0 give masked positions a nonzero covariance;
# zero it again, as Dense does.
_REMASKED = Requirements(gaussian_input=True, remask=True)


def _mehler_coefficients(coef: Sequence[float]) -> list[list[float]]:
  """`beta_l` of the module docstring, times `sqrt(l!)`, as lists in `q`."""
  out = []
  for l in range(len(coef)):
    out.append([coef[l + 2 * i] * math.factorial(l + 2 * i)
                / (2 ** i * math.factorial(i) * math.sqrt(math.factorial(l)))
                for i in range((len(coef) - 1 - l) // 2 + 1)])
  return out


def _horner(coefs: Sequence[float], x):
  """`sum_i coefs[i] x^i`, in `x`'s dtype (the coefficients are Python floats)."""
  out = 0. * x
  for a in reversed(coefs):
    out = out * x + a
  return out


def _polynomial_dual(coef: Sequence[float]):
  """The dual `fn(cov, var_a, var_b, ntk)` of `p(z) = sum_n coef[n] z^n`."""
  coef = [float(a) for a in coef]
  betas = _mehler_coefficients(coef)

  def fn(cov, var_a, var_b, ntk):
    # t_l = l! beta_l(q1) beta_l(q2), the coefficient of c^l.
    t = [_horner(b, var_a) * _horner(b, var_b) for b in betas]
    nngp = 0. * cov
    for tl in reversed(t):
      nngp = nngp * cov + tl
    if ntk is None:
      return nngp, None
    dot = 0. * cov
    for l in range(len(t) - 1, 0, -1):
      dot = dot * cov + l * t[l]
    return nngp, ntk * dot

  return fn


def Polynomial(coef: Sequence[float]):
  """Polynomial `coef[0] + coef[1] x + ... + coef[n] x^n`.

  Kernel: `E[p(u) p(v)] = sum_l l! beta_l(q1) beta_l(q2) c^l` with
  `beta_l(q) = sum_i coef[l+2i] (l+2i)! / (2^i i! l!) q^i` (Mehler's formula,
  module docstring); NTK factor: its derivative in `c`. Exact for any
  variances, zero included (NT divides by `sqrt(q1 q2)` and gives NaN there).

  Args:
    coef: the coefficients, lowest degree first (as in
      `numpy.polynomial.Polynomial`).
  """
  coef = [float(a) for a in np.asarray(coef, dtype=float).ravel()]
  fn = _polynomial_dual(coef)

  def rule(k, **kwargs):
    """Polynomial: `sum_l l! beta_l(q1) beta_l(q2) c^l` (Mehler's formula)."""
    del kwargs
    return kernel_ops.elementwise(k, fn)

  return elementwise_layer("Polynomial", lambda x: _horner(coef, x), rule,
                           _REMASKED)


def Monomial(degree: int):
  """Monomial `x^degree`.

  Kernel: `E[u^n v^n] = sum_i (n! / (2^i i! (n-2i)!))^2 (n-2i)! (q1 q2)^i
  c^(n-2i)` (e.g. `9 c q1 q2 + 6 c^3` for `n = 3`), the module's Mehler
  formula for a single term; diagonal `(2n-1)!! q^n`. NTK factor:
  `E[n u^(n-1) n v^(n-1)] = n^2 E[u^(n-1) v^(n-1)]`.

  Args:
    degree: a non-negative integer (NT accepts 0 to 5; any degree works here).
  """
  degree = _check_degree(degree, "Monomial")
  coef = [0.] * degree + [1.]
  fn = _polynomial_dual(coef)
  dfact = float(np.prod(np.arange(2 * degree - 1, 0, -2, dtype=float)))

  def diag(var):
    return dfact * var ** degree

  def rule(k, **kwargs):
    """Monomial: `E[u^n v^n]` by Mehler's formula; `n^2 E[u^(n-1) v^(n-1)]`."""
    del kwargs
    return kernel_ops.elementwise(k, fn, diag)

  return elementwise_layer("Monomial", lambda x: x ** degree, rule, _REMASKED)


def _arccos_coefficients(degree: int) -> tuple[list[int], list[int]]:
  """Polynomials `a_n, b_n` with `J_n(theta) = a_n(rho) (pi - theta) + b_n(rho) sin(theta)`.

  `J_n` is Cho & Saul's (2009) angular part of the arc-cosine kernel,
  `J_n = (-1)^n sin^(2n+1) (1/sin d/dtheta)^n ((pi - theta) / sin)`. With
  `rho = cos(theta)` the operator is `-d/drho`; differentiating
  `g a_n (1-rho^2)^-(n+1/2) + b_n (1-rho^2)^-n` (`g = pi - arccos rho`,
  `g' = (1-rho^2)^-1/2`) gives the recursion

      a_(n+1) = (1 - rho^2) a_n' + (2n + 1) rho a_n,   a_0 = 1,
      b_(n+1) = a_n + (1 - rho^2) b_n' + 2n rho b_n,   b_0 = 0,

  in exact integer arithmetic. `a_n` has the parity of `n`, `b_n` the other.
  """
  def deriv(p):
    return [i * p[i] for i in range(1, len(p))] or [0]

  def add(*ps):
    out = [0] * max(len(p) for p in ps)
    for p in ps:
      for i, x in enumerate(p):
        out[i] += x
    return out

  def times_rho(p, s):
    return [0] + [s * x for x in p]

  def times_one_minus_rho2(p):
    return add(p, [0, 0] + [-x for x in p])

  a, b = [1], [0]
  for n in range(degree):
    a, b = (add(times_one_minus_rho2(deriv(a)), times_rho(a, 2 * n + 1)),
            add(a, times_one_minus_rho2(deriv(b)), times_rho(b, 2 * n)))
  return a, b


def _homogeneous(coefs: Sequence[int], degree: int, cov, prod):
  """`sum_k coefs[k] c^k P^((degree - k) / 2)` over `k` of `degree`'s parity.

  That is `P^(degree/2) p(c / sqrt(P))` for a polynomial `p` of that parity,
  computed without dividing by `sqrt(P)`.
  """
  out = 0. * cov
  for kk, a in enumerate(coefs):
    if a == 0:
      continue
    if (degree - kk) % 2:
      raise AssertionError("parity of the arc-cosine recursion violated")
    out = out + float(a) * cov ** kk * prod ** ((degree - kk) // 2)
  return out


def _rectified_dual(degree: int):
  """The dual of `max(x, 0)^degree`: the arc-cosine kernel of that order."""
  coefs = [_arccos_coefficients(n) for n in range(degree + 1)]

  def arccos_kernel(n, cov, prod, gram):
    # (1 / 2 pi) (q1 q2)^(n/2) J_n(theta), with J_n = a_n (pi - theta) + b_n sin.
    root = jnp.sqrt(prod)
    # A zero-norm input has prod = cov = 0: take cos = 0 there instead of 0/0.
    cos = jnp.clip(cov / jnp.where(root > 0, root, 1.), -1., 1.)
    a, b = coefs[n]
    out = _homogeneous(a, n, cov, prod) * (np.pi - jnp.arccos(cos))
    if n > 0:
      out = out + _homogeneous(b, n - 1, cov, prod) * kernel_ops.safe_sqrt(
          gram)
    return out / (2 * np.pi)

  def fn(cov, var_a, var_b, ntk):
    prod, gram = var_a * var_b, kernel_ops.gram(cov, var_a, var_b)
    nngp = arccos_kernel(degree, cov, prod, gram)
    if ntk is None:
      return nngp, None
    if degree == 0:  # phi' = 0 almost everywhere (NT's convention too)
      return nngp, jnp.zeros_like(ntk)
    return nngp, ntk * degree ** 2 * arccos_kernel(degree - 1, cov, prod, gram)

  dfact = float(np.prod(np.arange(2 * degree - 1, 0, -2, dtype=float)))

  def diag(var):  # theta = 0: J_n(0) = pi (2n - 1)!!
    return dfact / 2 * var ** degree

  return fn, diag


def RectifiedMonomial(degree: int):
  """Rectified monomial `max(x, 0)^degree` (`(x >= 0) x^degree`).

  Kernel: the arc-cosine kernel of order `n` (Cho & Saul 2009),
  `(q1 q2)^(n/2) J_n(theta) / (2 pi)`, with `J_n = a_n(cos) (pi - theta) +
  b_n(cos) sin(theta)` from an exact integer recursion (see
  `_arccos_coefficients`); NTK factor `n^2` times the order `n - 1` kernel
  (Price's theorem), zero for `n = 0`. Unlike NT 0.6.5, which
  differentiates `(pi - theta) / sin(theta)` with autodiff and returns NaN on
  the diagonal (`theta = 0`) when `x2` is None, this is finite and exact
  there: `(2n - 1)!! q^n / 2`.

  Args:
    degree: a non-negative integer.
  """
  degree = _check_degree(degree, "RectifiedMonomial")
  fn, diag = _rectified_dual(degree)

  def rule(k, **kwargs):
    """RectifiedMonomial: arc-cosine kernel of order n (Cho & Saul 2009)."""
    del kwargs
    return kernel_ops.elementwise(k, fn, diag)

  def apply(x):
    return jnp.where(x >= 0, x ** degree, jnp.zeros((), x.dtype))

  return elementwise_layer("RectifiedMonomial", apply, rule, _REMASKED)


def Hermite(degree: int):
  """Normalized probabilists' Hermite polynomial `He_n(x) / sqrt(n!)`.

  As in NT, the kernel assumes unit-variance inputs (`q1 = q2 = 1`, e.g.
  after `LayerNorm`, or `Dense(W_std=1)` on inputs with
  `mean(x**2, channel_axis) == 1`). Then `E[h(u) h(v)] = c^n` (Mehler), and
  the rule is NT's: `nngp' = nngp^n`, `cov' = cov^n`, NTK factor `n c^(n-1)`
  (zero for `n = 0`). For other variances this is not the kernel of
  `apply_fn`; `Polynomial` with the Hermite coefficients gives the exact one.

  Args:
    degree: a non-negative integer.
  """
  degree = _check_degree(degree, "Hermite")
  norm = math.sqrt(math.factorial(degree))

  def apply(x):
    # He_(n+1) = x He_n - n He_(n-1): stable, and in x's dtype.
    prev, cur = jnp.ones_like(x), x
    if degree == 0:
      return prev
    for n in range(1, degree):
      prev, cur = cur, x * cur - n * prev
    return cur / norm

  def fn(cov, var_a, var_b, ntk):
    del var_a, var_b  # assumed to be 1, as in NT
    nngp = cov ** degree
    if ntk is None:
      return nngp, None
    if degree == 0:
      return nngp, jnp.zeros_like(ntk)
    return nngp, ntk * degree * cov ** (degree - 1)

  def rule(k, **kwargs):
    """Hermite: `nngp^n` for unit-variance inputs (Mehler's formula)."""
    del kwargs
    return kernel_ops.elementwise(k, fn, lambda var: var ** degree)

  return elementwise_layer("Hermite", apply, rule, _REMASKED)


def _check_degree(degree, layer: str) -> int:
  if int(degree) != degree or degree < 0:
    raise ValueError(f"{layer}(degree={degree!r}): degree must be a "
                     f"non-negative integer.")
  return int(degree)
