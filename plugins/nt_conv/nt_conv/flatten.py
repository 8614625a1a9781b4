"""`Flatten`: all non-batch axes into one feature axis."""

from __future__ import annotations

import math

import jax.numpy as jnp

from ntcore import Diag, Kernel, Requirements, make_layer



def Flatten(batch_axis: int = 0, batch_axis_out: int = 0):
  """Flattens every non-batch axis (spatial and channel) into one.

  Args:
    batch_axis: batch axis of the inputs.
    batch_axis_out: batch axis of the `(n, features)` (0) or
      `(features, n)` (1) output.

  Kernel (NT paper Table 1, `Tr`): a following Dense layer sums over
  `(position, channel)` features, so only the mean same-position covariance
  survives: `nngp'(a, b) = mean_i K_ab(i, i)` (the normalized trace over
  every spatial pair); likewise the NTK. Only diagonal blocks are read. The
  output is not Gaussian per feature: an affine layer must follow before a
  nonlinearity.
  """
  if batch_axis_out in (0, -2):
    batch_axis_out, channel_axis_out = 0, 1
  elif batch_axis_out in (1, -1):
    batch_axis_out, channel_axis_out = 1, 0
  else:
    raise ValueError(f"Flatten(batch_axis_out={batch_axis_out}): must be 0 or 1.")

  def out_shape(input_shape):
    b = batch_axis % len(input_shape)
    n = input_shape[b]
    rest = math.prod(s for a, s in enumerate(input_shape) if a != b)
    return (n, rest) if batch_axis_out == 0 else (rest, n)

  def init_fn(key, input_shape):
    del key
    return out_shape(tuple(input_shape)), ()

  def apply_fn(params, inputs, **kwargs):
    del params, kwargs
    x = jnp.moveaxis(inputs, batch_axis, 0)
    x = x.reshape((x.shape[0], -1))
    return x if batch_axis_out == 0 else x.T

  def rule(k, **kwargs):
    del kwargs
    changes = {}
    for field, m, b in k.arrays():
      if m.ndim > b:
        if not k.diagonal_spatial:
          m = Kernel.same_positions(m, b)
        m = jnp.mean(m, tuple(range(b, m.ndim)))
      changes[field] = m
    return k.replace(is_gaussian=False, is_reversed=False,
                     batch_axis=batch_axis_out, channel_axis=channel_axis_out,
                     diagonal_spatial=False, **changes)

  def mask_fn(mask, input_shape):
    mask = jnp.broadcast_to(mask, input_shape)
    x = jnp.moveaxis(mask, batch_axis, 0).reshape((mask.shape[batch_axis], -1))
    return x if batch_axis_out == 0 else x.T

  return make_layer("Flatten", init_fn, apply_fn, rule,
                    Requirements(flat_input=True, batch_axis=batch_axis,
                                 diagonal_spatial=Diag.REMOVES),
                    mask_fn)
