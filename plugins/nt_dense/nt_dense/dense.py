"""`Dense`: the fully-connected (affine) layer, finite and infinite."""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp
from jax import random

from ntcore import Requirements, make_layer


def Dense(out_dim: int, W_std: float = 1., b_std: Optional[float] = None,
          batch_axis: int = 0, channel_axis: int = -1,
          parameterization: str = "ntk", s: tuple[int, int] = (1, 1)):
  """Dense (fully-connected) layer: `z = W x + b` along the channel axis.

  Args:
    out_dim: number of output channels.
    W_std: weight standard deviation.
    b_std: bias standard deviation; None for no bias.
    batch_axis: batch axis of the inputs.
    channel_axis: axis the layer contracts (the features).
    parameterization: "ntk" — `z = W_std / sqrt(N) W x + b_std b` with
      `W, b ~ N(0, 1)` (Jacot et al. 2018) — or "standard" —
      `z = W x / sqrt(s[0]) + b` with `W ~ N(0, W_std^2 s[0] / N)`,
      `b ~ N(0, b_std^2)` (Sohl-Dickstein et al. 2020).
    s: standard parameterization only: width multipliers of the input and
      output; `W` has shape `(N, out_dim * s[1])`.

  Kernel (NT paper Table 1): `nngp' = W_std^2 nngp + b_std^2` (and `cov1`,
  `cov2`). NTK: "ntk" — the gradient with respect to `(W, b)` contributes
  exactly `nngp'`, backpropagation `W_std^2 ntk`, so `ntk' = nngp' +
  W_std^2 ntk`; "standard" — `ntk' = (N / s[0]) nngp + [b] + W_std^2 ntk`,
  where `N` is the input width (the weights' fan-in) and `[b]` is 1 with a
  bias.
  """
  parameterization = parameterization.lower()
  if parameterization not in ("ntk", "standard"):
    raise ValueError(f"parameterization must be 'ntk' or 'standard', got "
                     f"{parameterization!r}.")

  def _init(key, input_shape, width):
    ax = channel_axis % len(input_shape)
    out_shape = tuple(input_shape[:ax]) + (width,) + tuple(input_shape[ax + 1:])
    k1, k2 = random.split(key)
    W = random.normal(k1, (input_shape[ax], width))
    b = None
    if b_std is not None:
      b_shape = [1] * len(input_shape)
      b_shape[ax] = width
      b = random.normal(k2, b_shape)
    return out_shape, (W, b)

  def init_fn(key, input_shape):
    if parameterization == "ntk":
      return _init(key, input_shape, out_dim)
    out_shape, (W, b) = _init(key, input_shape, out_dim * s[1])
    W = W * (W_std / (input_shape[channel_axis] / s[0]) ** 0.5)
    b = None if b is None else b * b_std
    return out_shape, (W, b)

  def apply_fn(params, inputs, **kwargs):
    del kwargs
    W, b = params
    prod = jnp.moveaxis(jnp.tensordot(W, inputs, (0, channel_axis)), 0,
                        channel_axis)
    if parameterization == "ntk":
      out = W_std / inputs.shape[channel_axis] ** 0.5 * prod
      return out if b is None else out + b_std * b
    out = prod / s[0] ** 0.5
    return out if b is None else out + b

  def rule(k, **kwargs):
    del kwargs
    b_var = None if b_std is None else b_std ** 2
    out = k.scale_preactivations(W_std ** 2, b_var)
    ntk = k.ntk
    if ntk is not None:
      if parameterization == "ntk":
        ntk = out.nngp + W_std ** 2 * ntk
      else:
        fan_in = k.shape1[k.channel_axis] / s[0]
        ntk = fan_in * k.nngp + W_std ** 2 * ntk
        if b_std is not None:
          ntk = ntk + 1.
    return out.replace(ntk=ntk, is_gaussian=True)

  def mask_fn(mask, input_shape):
    del input_shape
    return jnp.all(mask, axis=channel_axis, keepdims=True)

  return make_layer("Dense", init_fn, apply_fn, rule,
                    Requirements(batch_axis=batch_axis,
                                 channel_axis=channel_axis, remask=True),
                    mask_fn)
