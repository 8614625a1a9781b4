"""`Step`: the Heaviside step `a * 1[x > 0]`, finite and infinite width.

For `(u, v) ~ N(0, [[q1, c], [c, q2]])` with angle
`theta = arccos(c / sqrt(q1 q2))` (Cho & Saul 2009, arc-cosine kernel of
order 0; Sheppard's orthant probability):

    E[phi(u) phi(v)]   = a^2 (pi - theta) / (2 pi)
    E[phi'(u) phi'(v)] = 0                       (phi' = 0 almost everywhere)
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from ntcore import Layer, elementwise_layer, kernel_ops


# Correlations within this many ulps of +-1 count as exactly +-1; see below.
_SNAP_ULPS = 64


def _step_dual(a: float):
  """`fn(cov, var_a, var_b, ntk)` and `diag(var)` for `kernel_ops.elementwise`."""

  def fn(cov, var_a, var_b, ntk):
    prod = var_a * var_b
    nonzero = prod > 0
    # Double `where`: a zero-norm input has prod = cov = 0, and 0/0 would put
    # NaN into the forward pass (and into gradients, even when masked later).
    root = jnp.sqrt(jnp.where(nonzero, prod, 1.))
    rho = jnp.clip(cov / root, -1., 1.)
    # The kernel has infinite slope at rho = +-1 (theta ~ sqrt(2 (1 - rho))),
    # so the few-ulp disagreement between nngp[i, i] and cov1[i] (two
    # different einsums, jit or not) would show as ~1e-8 relative error on
    # the diagonal. Inputs that close to parallel are indistinguishable from
    # parallel at this precision: snap them, and keep arccos (and its
    # infinite derivative) away from +-1.
    parallel = 1 - jnp.abs(rho) <= _SNAP_ULPS * jnp.finfo(cov.dtype).eps
    theta = jnp.where(parallel, np.pi * (rho < 0),
                      jnp.arccos(jnp.where(parallel, 0., rho)))
    nngp = jnp.where(nonzero, a ** 2 / 2 * (1 - theta / np.pi), 0.)
    return nngp, None if ntk is None else jnp.zeros_like(ntk)

  def diag(var):  # theta = 0, and 0 for a zero-norm input
    return a ** 2 / 2 * (var > 0).astype(var.dtype)

  return fn, diag


def Step(a: float = 1.) -> Layer:
  """Heaviside step `a * 1[x > 0]`; arc-cosine kernel of order 0 (Cho & Saul 2009).

  Args:
    a: height of the step.

  Returns:
    `Layer(init_fn, apply_fn, kernel_fn)`; parameter-free, shape-preserving.
    `kernel_fn` needs a Gaussian input kernel (an affine layer before it).

  NNGP. Write `(u, v) = (sqrt(q1) <g, e1>, sqrt(q2) <g, e2>)` with
  `g ~ N(0, I_2)` and unit vectors `e1`, `e2` at angle
  `theta = arccos(c / sqrt(q1 q2))`. The direction of `g` is uniform on the
  circle; `{u > 0}` and `{v > 0}` are half-planes whose normals are `theta`
  apart, so they meet in a wedge of angle `pi - theta`, and

      E[phi(u) phi(v)] = a^2 P(u > 0, v > 0) = a^2 (pi - theta) / (2 pi),

  which is `a^2 / 2` times Cho & Saul's `k_0 = (1 / pi) J_0(theta)`,
  `J_0 = pi - theta`. On the diagonal `theta = 0`: `cov1 = a^2 / 2`. The
  kernel depends only on the angle, since `phi(lambda x) = phi(x)` for
  `lambda > 0`.

  Zero-norm inputs: `q1 = 0` means `u = 0` almost surely and `phi(0) = 0`,
  so every entry involving such an input is exactly 0 (the formula with the
  0/0 angle read as `pi / 2` would wrongly give `a^2 / 4`). No NaN is formed.

  NTK. `phi' = 0` almost everywhere (`phi` is piecewise constant), so
  `E[phi'(u) phi'(v)] = 0` and the NTK coming through this layer is zero:
  parameters before a `Step` get no gradient, in the finite network too
  (autodiff differentiates the step as 0). Only layers after it contribute.
  The distributional derivative `a delta(x)` would give
  `a^2 / (2 pi sqrt(q1 q2 - c^2))`, infinite on the diagonal, which gradient
  descent never sees.

  Precision: near `theta = 0` the kernel has infinite slope in `c`
  (`theta ~ sqrt(2 (1 - rho))`, `rho = c / sqrt(q1 q2)`), so a round-off
  `delta` in `rho` becomes about `sqrt(2 delta) / pi` relative error. `rho`
  within 64 ulps of +-1 is therefore taken as exactly +-1 (this moves the
  kernel of genuinely near-parallel inputs by at most ~5e-8 relative in
  float64, ~1e-3 in float32), which keeps `diag(nngp) == cov1` exact; the
  gradient there is 0, a valid subgradient of the kink.
  """
  fn, diag = _step_dual(a)

  def apply(x):
    return a * (x > 0).astype(x.dtype)

  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, fn, diag)

  return elementwise_layer("Step", apply, rule)
