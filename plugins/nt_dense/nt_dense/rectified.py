"""Piecewise-linear nonlinearities: ABRelu and its special cases.

All are `phi(x) = a min(x, 0) + b max(x, 0)`. For
`(u, v) ~ N(0, [[q1, c], [c, q2]])` with angle `theta = arccos(c / sqrt(q1 q2))`
(Cho & Saul 2009, arc-cosine kernels; NT paper Table 1):

    E[phi(u) phi(v)]   = (a - b)^2 / (2 pi) sqrt(q1 q2 - c^2) + c * dsigma
    E[phi'(u) phi'(v)] = dsigma = (a^2 + b^2) / 2 - (a - b)^2 theta / (2 pi)
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from ntcore import elementwise_layer, kernel_ops


def _abrelu_dual(a: float, b: float):
  def fn(cov, var_a, var_b, ntk):
    prod = var_a * var_b
    root = jnp.sqrt(prod)
    # A zero-norm input has prod = cov = 0: take cos = 0 there instead of 0/0.
    cos = jnp.clip(cov / jnp.where(root > 0, root, 1.), -1., 1.)
    theta = jnp.arccos(cos)
    dsigma = (a ** 2 + b ** 2) / 2 - (a - b) ** 2 * theta / (2 * np.pi)
    out = (a - b) ** 2 / (2 * np.pi) * kernel_ops.safe_sqrt(prod - cov ** 2) \
        + dsigma * cov
    return out, None if ntk is None else ntk * dsigma

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
      "ABRelu", lambda x: a * jnp.minimum(x, 0) + b * jnp.maximum(x, 0), rule)


def Relu(do_stabilize: bool = False):
  """ReLU `max(x, 0)`; arc-cosine kernel of order 1 (Cho & Saul 2009)."""
  layer = ABRelu(0., 1., do_stabilize)
  return _renamed(layer, "Relu")


def LeakyRelu(alpha: float, do_stabilize: bool = False):
  """Leaky ReLU `max(x, alpha x)`: ABRelu with slopes (alpha, 1)."""
  return _renamed(ABRelu(alpha, 1., do_stabilize), "LeakyRelu")


def Abs(do_stabilize: bool = False):
  """Absolute value `|x|`: ABRelu with slopes (-1, 1)."""
  return _renamed(ABRelu(-1., 1., do_stabilize), "Abs")


def _renamed(layer, name):
  layer.kernel_fn.name = name
  return layer
