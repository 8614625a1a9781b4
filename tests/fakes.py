"""Tiny layers for core tests, built with the core's own protocol.

Core tests never use a real plugin; these stand in for Dense and a
nonlinearity with rules simple enough to check by hand.
"""

import jax.numpy as jnp
from jax import random

from ntcore import Diag, Requirements, elementwise_layer, kernel_ops, make_layer


def linear(out_dim=3, w_var=2., b_var=0.5, channel_axis=-1, record=None,
           diag_batch=Diag.PRESERVES, diag_spatial=Diag.PRESERVES):
  """A Dense stand-in: `nngp' = w_var nngp + b_var`, `ntk' = nngp' + w_var ntk`.

  `record`, a list, receives each input kernel the rule sees.
  """

  def init_fn(key, input_shape):
    ax = channel_axis % len(input_shape)
    shape = tuple(input_shape[:ax]) + (out_dim,) + tuple(input_shape[ax + 1:])
    return shape, random.normal(key, (input_shape[ax], out_dim))

  def apply_fn(params, x, **kwargs):
    del kwargs
    y = jnp.tensordot(x, params, (channel_axis, 0)) * (w_var / x.shape[channel_axis]) ** 0.5
    return jnp.moveaxis(y, -1, channel_axis) + b_var ** 0.5

  def rule(k, **kwargs):
    del kwargs
    if record is not None:
      record.append(k)
    out = k.scale_preactivations(w_var, b_var)
    ntk = None if k.ntk is None else out.nngp + w_var * k.ntk
    return out.replace(ntk=ntk, is_gaussian=True)

  def mask_fn(mask, input_shape):
    del input_shape
    return jnp.all(mask, axis=channel_axis, keepdims=True)

  return make_layer("Linear", init_fn, apply_fn, rule,
                    Requirements(channel_axis=channel_axis, remask=True,
                                 diagonal_batch=diag_batch,
                                 diagonal_spatial=diag_spatial),
                    mask_fn)


def square():
  """`phi(x) = x^2`: E[u^2 v^2] = q1 q2 + 2 c^2, E[2u 2v] = 4 c."""

  def fn(cov, var_a, var_b, ntk):
    out = var_a * var_b + 2 * cov ** 2
    return out, None if ntk is None else ntk * 4 * cov

  return elementwise_layer("Square", jnp.square,
                           lambda k, **kw: kernel_ops.elementwise(k, fn))
