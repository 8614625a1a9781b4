"""The sign nonlinearity.

For `(u, v) ~ N(0, [[q1, c], [c, q2]])`, `sign(u) sign(v)` is 1 unless the
two fall in different half-lines, which happens with probability
`theta / pi`, `theta = arccos(c / sqrt(q1 q2))` (Sheppard 1899; the arc-cosine
kernel of order 0, Cho & Saul 2009):

    E[sign(u) sign(v)] = 1 - 2 theta / pi = (2 / pi) arcsin(c / sqrt(q1 q2))
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from ntcore import elementwise_layer, kernel_ops


def _sign_dual(cov, var_a, var_b, ntk):
  # sqrt(q1) sqrt(q2), not sqrt(q1 q2): the product of two tiny variances
  # underflows although each is positive.
  scale = jnp.sqrt(var_a) * jnp.sqrt(var_b)
  # A variance that is exactly 0 (a zero-norm input, or one whose square
  # underflowed while its cross products did not) means sign(u) = 0 almost
  # surely: its row is 0, as `_sign_diag` says, or the kernel is not PSD.
  positive = scale > 0
  rho = jnp.clip(cov / jnp.where(positive, scale, 1.), -1., 1.)
  gap = 1. - rho ** 2
  # arcsin is infinitely steep at |rho| = 1, so a few ulps of round-off in c
  # or q (e.g. nngp's diagonal vs cov1 when x2 is None, which jit and no-jit
  # round differently) become sqrt(eps) ~ 1e-8 errors. Such a gap is below
  # what the inputs resolve anyway: call it 0, making |rho| = 1 exact there.
  gap = jnp.where(gap > 4 * jnp.finfo(gap.dtype).eps, gap, 0.)
  # arctan2(rho, sqrt(1 - rho^2)) = arcsin(rho), with a finite derivative.
  out = jnp.where(positive, (2 / np.pi) * jnp.arctan2(rho, jnp.sqrt(gap)), 0.)
  return out, None if ntk is None else jnp.zeros_like(ntk)


def _sign_diag(var):  # sign(u)^2 = 1 unless u = 0 almost surely
  return jnp.where(var > 0, 1., 0.).astype(var.dtype)


def Sign():
  """`sign(x)`; arc-cosine kernel of order 0 (Cho & Saul 2009).

  Kernel: `nngp' = (2 / pi) arcsin(c / sqrt(q1 q2))`, 0 for a zero-norm
  input; `cov1' = 1` (0 where `q = 0`). The NTK is zero, as in NT: the
  derivative of `sign` is 0 almost everywhere, so a finite network's
  gradient never flows through it and its empirical NTK has no such term
  (the `c`-derivative of the NNGP, `(2 / pi) / sqrt(q1 q2 - c^2)`, is the
  NTK of smooth approximations of `sign`, not of `sign`).

  Unlike NT, which sets every non-zero entry of `cov1` to 1, off-diagonal
  entries of a full `cov1` (`diagonal_batch=False` or full spatial
  covariances) get the arcsine kernel too: they pair two different inputs
  (examples or positions), and only an input with itself has
  `E[sign(u)^2] = 1`.
  """

  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, _sign_dual, _sign_diag)

  return elementwise_layer("Sign", jnp.sign, rule)
