"""Piecewise-linear nonlinearities: ABRelu and its special cases.

All are `phi(x) = a min(x, 0) + b max(x, 0)`. For
`(u, v) ~ N(0, [[q1, c], [c, q2]])` with angle `theta = arccos(c / sqrt(q1 q2))`
(Cho & Saul 2009, arc-cosine kernels; NT paper Table 1):

    E[phi(u) phi(v)]   = (a - b)^2 / (2 pi) sqrt(q1 q2 - c^2) + c * dsigma
    E[phi'(u) phi'(v)] = dsigma = (a^2 + b^2) / 2 - (a - b)^2 theta / (2 pi)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ntcore import elementwise_layer, kernel_ops

from nt_dense._atan2 import atan2_upper


def _root_gram(cov, var_a, var_b, root):
  """`root(q1 q2 - c^2)` where that is positive, else 0 (finite derivatives)."""
  gram = kernel_ops.gram(cov, var_a, var_b)
  open_ = gram > 0
  return jnp.where(open_, root(jnp.where(open_, gram, 1.)), 0.)


def _abrelu_dual(a: float, b: float):
  """The dual of ABRelu, with derivatives that stay finite.

  Written naively, the NNGP's derivatives are `inf - inf` at correlation 1
  (same example) and `0 / 0` at zero-norm inputs, though the function is
  smooth there. Its exact partial derivatives are finite:

      d out / d c  = dsigma,
      d out / d q1 = (a - b)^2 / (2 pi) sqrt(q1 q2 - c^2) / (2 q1)

  (the arccos terms cancel), so they are given as its JVP. NT returns NaN
  gradients at zero inputs (NT issue #123 asks for 0); ntcore returns 0.
  """
  k = (a - b) ** 2 / (2 * np.pi)

  def angle(cov, var_a, var_b):
    # theta = atan2(sqrt(q1 q2 - c^2), c): exactly 0 for the same example
    # twice (`kernel_ops.gram` is exactly 0 there, under any fusion), where
    # arccos(c / sqrt(q1 q2)) turns the round-off of the quotient into
    # sqrt(eps). A zero-norm input has q1 q2 = c = 0: theta = pi / 2 there,
    # with an argument that is never (0, 0) (so no NaN in derivatives).
    # At theta = 0 the NTK has a cusp (theta ~ |x2 - x1|): its derivative
    # there is taken as 0, the symmetric one.
    pos = var_a * var_b > 0
    root_gram = _root_gram(cov, var_a, var_b, jnp.sqrt)
    theta = jnp.where(pos, atan2_upper(jnp.where(pos, root_gram, 1.),
                                       jnp.where(pos, cov, 0.)), np.pi / 2)
    return (a ** 2 + b ** 2) / 2 - k * theta

  def out_root_gram(cov, var_a, var_b):
    # The same root as `g rsqrt(g)`: XLA stores a square root with several
    # users rather than recompute it, so with one `sqrt` for the angle and
    # the output, each ReLU layer held one more covariance-sized array.
    return _root_gram(cov, var_a, var_b, lambda g: g * jax.lax.rsqrt(g))

  @jax.custom_jvp
  def nngp(cov, var_a, var_b):
    return k * out_root_gram(cov, var_a, var_b) + angle(cov, var_a, var_b) * cov

  @nngp.defjvp
  def nngp_jvp(primals, tangents):
    cov, var_a, var_b = primals
    d_cov, d_a, d_b = tangents
    dsigma = angle(cov, var_a, var_b)
    root_gram = out_root_gram(cov, var_a, var_b)

    def by_var(var):
      pos = var > 0
      return jnp.where(pos, k * root_gram / (2 * jnp.where(pos, var, 1.)), 0.)

    out = k * root_gram + dsigma * cov
    return out, dsigma * d_cov + by_var(var_a) * d_a + by_var(var_b) * d_b

  def fn(cov, var_a, var_b, ntk):
    out = nngp(cov, var_a, var_b)
    if ntk is None:
      return out, None
    return out, ntk * angle(cov, var_a, var_b)

  def diag(var):  # theta = 0
    return (a ** 2 + b ** 2) / 2 * var

  return fn, diag


def ABRelu(a: float, b: float, do_stabilize: bool = False):
  """`a * min(x, 0) + b * max(x, 0)`; arc-cosine kernel (Cho & Saul 2009).

  Args:
    a: slope for negative inputs.
    b: slope for positive inputs.
    do_stabilize: divide the kernel by its largest entry before the rule and
      multiply back after (exact, since phi is positively homogeneous);
      avoids overflow in very deep networks.
  """
  return _abrelu_layer("ABRelu", a, b, do_stabilize)


def _abrelu_layer(name: str, a: float, b: float, do_stabilize: bool):
  """The `ABRelu(a, b)` layer under `name` (Relu, LeakyRelu and Abs are ABRelus)."""
  fn, diag = _abrelu_dual(a, b)

  def rule(k, **kwargs):
    del kwargs
    if not do_stabilize:
      return kernel_ops.elementwise(k, fn, diag)
    factor = jnp.maximum(jnp.max(jnp.abs(k.nngp)), 1e-12)
    div = k.replace(nngp=k.nngp / factor, cov1=k.cov1 / factor,
                    cov2=None if k.cov2 is None else k.cov2 / factor)
    out = kernel_ops.elementwise(div, fn, diag)
    return out.replace(nngp=out.nngp * factor, cov1=out.cov1 * factor,
                       cov2=None if out.cov2 is None else out.cov2 * factor)

  return elementwise_layer(
      name, lambda x: a * jnp.minimum(x, 0) + b * jnp.maximum(x, 0), rule)


def Relu(do_stabilize: bool = False):
  """ReLU `max(x, 0)`; arc-cosine kernel of order 1 (Cho & Saul 2009)."""
  return _abrelu_layer("Relu", 0., 1., do_stabilize)


def LeakyRelu(alpha: float, do_stabilize: bool = False):
  """Leaky ReLU `max(x, alpha x)`: ABRelu with slopes (alpha, 1)."""
  return _abrelu_layer("LeakyRelu", alpha, 1., do_stabilize)


def Abs(do_stabilize: bool = False):
  """Absolute value `|x|`: ABRelu with slopes (-1, 1)."""
  return _abrelu_layer("Abs", -1., 1., do_stabilize)
