"""Exponential nonlinearities: Exp, Gaussian, and the ExpNormalized kernel.

For `(u, v) ~ N(0, S)`, `S = [[q1, c], [c, q2]]`, both closed forms are
Gaussian integrals:

    E[exp(b u) exp(b v)]             = exp(b^2 (q1 + q2 + 2 c) / 2)
    E[exp(b u^2) exp(b v^2)]         = det(I - 2 b S)^(-1/2)
    E[u v exp(b u^2) exp(b v^2)]     = c det(I - 2 b S)^(-3/2)

(the last is the (1, 2) entry of `(S^-1 - 2 b I)^-1 = (I - 2 b S)^-1 S`,
which is `c / det(I - 2 b S)`, times the normalisation of the first).
"""

from __future__ import annotations

import jax.numpy as jnp

from ntcore import Requirements, elementwise_layer, kernel_ops

# exp(0) != 0: a masked position would get non-zero covariance; zero it again
# after the rule, as NT does.
_REMASK = Requirements(gaussian_input=True, remask=True)


def _layer(name, fn, dual, diag):
  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, dual, diag)

  return elementwise_layer(name, fn, rule, _REMASK)


def Exp(a: float = 1., b: float = 1.):
  """`a * exp(b * x)`.

  Kernel: `nngp' = a^2 exp(b^2 (q1 + q2 + 2 c) / 2)` (log-normal moments),
  `ntk' = ntk b^2 nngp'`, `cov1' = a^2 exp(2 b^2 q)`.
  """
  b2 = b ** 2

  def dual(cov, var_a, var_b, ntk):
    out = a ** 2 * jnp.exp(b2 * ((var_a + var_b) / 2 + cov))
    return out, None if ntk is None else ntk * (b2 * out)

  def diag(var):
    return a ** 2 * jnp.exp(2 * b2 * var)

  return _layer("Exp", lambda x: a * jnp.exp(b * x), dual, diag)


def Gaussian(a: float = 1., b: float = -1.):
  """`a * exp(b * x^2)`.

  Kernel: with `det = det(I - 2 b S) = 1 - 2 b (q1 + q2) + 4 b^2 (q1 q2 -
  c^2)`, `nngp' = a^2 / sqrt(det)` and `ntk' = ntk a^2 4 b^2 c / det^(3/2)`
  (`phi'(x) = 2 a b x exp(b x^2)`). For `b <= 0` (the default) `det >= 1`.
  For `b > 0` the expectation exists only while `I - 2 b S` is positive
  definite (`2 b q1 < 1` and `det > 0`); elsewhere the NNGP is `inf` and
  the NTK `nan` (NT returns a finite value where `det > 0` but `I - 2 b S`
  has two negative eigenvalues, which is wrong).
  """

  def dual(cov, var_a, var_b, ntk):
    det = (1 - 2 * b * (var_a + var_b)
           + 4 * b ** 2 * kernel_ops.gram(cov, var_a, var_b))
    root = jnp.sqrt(det)
    out = a ** 2 / root
    ntk_out = None if ntk is None else ntk * (4 * a ** 2 * b ** 2 * cov /
                                              (det * root))
    if b > 0:  # static: only then can the integral diverge
      ok = (2 * b * var_a < 1) & (det > 0)
      out = jnp.where(ok, out, jnp.inf)
      if ntk_out is not None:
        ntk_out = jnp.where(ok, ntk_out, jnp.nan)
    return out, ntk_out

  def diag(var):
    det = 1 - 4 * b * var
    out = a ** 2 / jnp.sqrt(det)
    return out if b <= 0 else jnp.where(det > 0, out, jnp.inf)

  return _layer("Gaussian", lambda x: a * jnp.exp(b * x ** 2), dual, diag)


def ExpNormalized(gamma: float = 1., shift: float = -1., do_clip: bool = False):
  """The normalized Gaussian kernel of Shankar et al. 2020 (arXiv:2003.02237).

  A kernel-only layer: `nngp' = sqrt(q1 q2) exp(gamma (rho + shift))` with
  `rho = c / sqrt(q1 q2)` the input correlation, and `ntk' = ntk gamma
  exp(gamma (rho + shift))`, the `c`-derivative of `nngp'`. With
  `q1 = q2 = 1` and `shift = -1` it is the RBF kernel `exp(-gamma (1 - c))`.

  Args:
    gamma: exponent scale.
    shift: added to `rho` in the exponent.
    do_clip: clip `rho` to [-1, 1], removing round-off excursions (e.g. on
      the diagonal when `x2` is None).

  A zero-norm input gives exactly `nngp' = 0` (the limit, since `|rho| <= 1`)
  and `rho = 0` in the NTK factor; NT divides by `sqrt(max(q1 q2, 1e-30))`
  and returns `~1e-15 exp(gamma shift)` instead of 0.

  Raises:
    NotImplementedError: from `apply_fn`: there is no finite-width network
      (as in NT).
  """

  def dual(cov, var_a, var_b, ntk):
    root = kernel_ops.safe_sqrt(var_a * var_b)
    rho = cov / jnp.where(root > 0, root, 1.)
    if do_clip:
      rho = jnp.clip(rho, -1., 1.)
    e = jnp.exp(gamma * (rho + shift))
    return root * e, None if ntk is None else ntk * (gamma * e)

  def diag(var):  # rho = 1
    return var * jnp.exp(gamma * (1. + shift))

  def fn(x):
    raise NotImplementedError(
        "ExpNormalized has no finite-width apply_fn: it is defined by its "
        "kernel only. Use kernel_fn, or a finite nonlinearity such as Rbf.")

  return _layer("ExpNormalized", fn, dual, diag)
