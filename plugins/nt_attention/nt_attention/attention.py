"""`GlobalSelfAttention`: multi-head self-attention over all positions.

The finite network (`init_fn`, `apply_fn`) is NT 0.6.5's, with the same
parameters `(W_query, W_key, W_value, W_out, b, pos_emb)`; the kernel rules
are in `_attention_kernel.py`.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import jax.numpy as jnp
from jax import random

from ntcore import Diag, Requirements, make_layer

from nt_attention import _attention_kernel, _pos_emb
from nt_attention._mechanism import AttentionMechanism, parse
from nt_attention._pos_emb import PositionalEmbedding


def GlobalSelfAttention(
    n_chan_out: int, n_chan_key: int, n_chan_val: int, n_heads: int,
    linear_scaling: bool = True, W_key_std: float = 1.0,
    W_value_std: float = 1.0, W_query_std: float = 1.0,
    W_out_std: float = 1.0, b_std: Optional[float] = None,
    attention_mechanism: str = "SOFTMAX", pos_emb_type: str = "NONE",
    pos_emb_p_norm: float = 2,
    pos_emb_decay_fn: Optional[Callable[[float], float]] = None,
    n_chan_pos_emb: Optional[int] = None, W_pos_emb_std: float = 1.0,
    val_pos_emb: bool = False, batch_axis: int = 0, channel_axis: int = -1):
  """Global dot-product self-attention (Vaswani et al. 2017; Hron et al. 2020).

  Each head `h` computes `phi(G_h) V_h` with logits
  `G_h = QK_std Q_h K_h^T / (c_in n_chan_key^alpha)` over all (flattened)
  positions, and the output is `concat_h(heads) W_out * OV_std /
  sqrt(n_heads n_chan_val c_val) + b_std b`, where `QK_std = W_query_std *
  W_key_std`, `OV_std = W_out_std * W_value_std`, every weight is standard
  normal (NTK parameterization) and `c_in`, `c_val` are the input widths of
  keys and values.

  * `linear_scaling=True` (`alpha = 1`): queries and keys share their weights
    (`Q_h = K_h`). The logits then converge to `QK_std` times the inputs'
    own covariance, so the attention weights are deterministic and the
    kernel is analytic for every mechanism.
  * `linear_scaling=False` (`alpha = 1/2`, the usual scaling): independent
    query and key weights; the logits converge to a Gaussian, and only
    `IDENTITY` has a closed-form kernel.

  Args:
    n_chan_out: output channels.
    n_chan_key: channels of keys and queries.
    n_chan_val: channels of values.
    n_heads: number of heads.
    linear_scaling: see above.
    W_key_std, W_query_std: enter only through `QK_std`.
    W_value_std, W_out_std: enter only through `OV_std`.
    b_std: bias standard deviation; None for no bias.
    attention_mechanism: "SOFTMAX" (over keys), "IDENTITY", "ABS" or "RELU".
    pos_emb_type: "NONE", "SUM" (added to the inputs) or "CONCAT" (appended
      as channels); see `_pos_emb.py` for their covariance.
    pos_emb_p_norm: `p` of the distance `sum_i |s_i - t_i|^p` between
      positions, used with `pos_emb_decay_fn`.
    pos_emb_decay_fn: distance -> covariance of two positions' embeddings;
      None for independent positions (covariance `1[s == t]`).
    n_chan_pos_emb: channels of the embeddings; None for the input width
      (SUM requires that).
    W_pos_emb_std: standard deviation of the embeddings.
    val_pos_emb: whether values see the embeddings too (else only keys and
      queries do).
    batch_axis, channel_axis: axes of the inputs.

  Returns:
    `Layer(init_fn, apply_fn, kernel_fn)`. `apply_fn(params, x, mask=None)`
    takes an optional boolean `mask` broadcastable to `x`, True at padded
    positions (all channels): they are never attended to.

  Raises:
    ValueError: an unknown `attention_mechanism` or `pos_emb_type`.
    NoAnalyticKernelError: from `kernel_fn`, for `linear_scaling=False` with
      a mechanism other than IDENTITY (use `nt.monte_carlo_kernel_fn`).
  """
  mechanism = parse(attention_mechanism, AttentionMechanism,
                    "attention_mechanism")
  pos_kind = parse(pos_emb_type, PositionalEmbedding, "pos_emb_type")
  qk_std, ov_std = W_query_std * W_key_std, W_out_std * W_value_std
  use_pos = pos_kind is not PositionalEmbedding.NONE

  def layout(ndim):
    return batch_axis % ndim, channel_axis % ndim

  def widths(c_in):
    """`(c_pos, c_keys, c_vals)`: input widths of keys and values."""
    if not use_pos:
      return 0, c_in, c_in
    c_p = _pos_emb.pos_channels(pos_kind, n_chan_pos_emb, c_in)
    if pos_kind is PositionalEmbedding.SUM:
      return c_p, c_in, c_in
    return c_p, c_in + c_p, c_in + c_p if val_pos_emb else c_in

  def init_fn(key, input_shape):
    b_ax, c_ax = layout(len(input_shape))
    c_in = input_shape[c_ax]
    out_shape = tuple(input_shape[:c_ax]) + (n_chan_out,) + tuple(
        input_shape[c_ax + 1:])
    k_q, k_k, k_v, k_o, k_b, k_p = random.split(key, 6)
    c_p, c_keys, c_vals = widths(c_in)
    pos = None
    if use_pos:
      shape = list(input_shape)
      shape[b_ax], shape[c_ax] = 1, c_p
      pos = random.normal(k_p, tuple(shape))
    w_key = random.normal(k_k, (n_heads, c_keys, n_chan_key))
    # Tied query and key weights under linear scaling (no query params).
    w_query = None if linear_scaling else random.normal(
        k_q, (n_heads, c_keys, n_chan_key))
    w_val = random.normal(k_v, (n_heads, c_vals, n_chan_val))
    w_out = random.normal(k_o, (n_heads * n_chan_val, n_chan_out))
    b = None
    if b_std is not None:
      b_shape = [1] * len(input_shape)
      b_shape[c_ax] = n_chan_out
      b = random.normal(k_b, tuple(b_shape))
    return out_shape, (w_query, w_key, w_val, w_out, b, pos)

  @functools.lru_cache(maxsize=8)
  def pos_root(shape):
    return _pos_emb.square_root(
        _pos_emb.covariance(shape, pos_emb_p_norm, pos_emb_decay_fn))

  def apply_fn(params, inputs, mask=None, **kwargs):
    del kwargs
    w_query, w_key, w_val, w_out, b, pos = params
    b_ax, c_ax = layout(inputs.ndim)
    n = inputs.shape[b_ax]
    sp_shape = tuple(s for a, s in enumerate(inputs.shape)
                     if a not in (b_ax, c_ax))
    x = jnp.moveaxis(inputs, (b_ax, c_ax), (0, -1)).reshape(n, -1,
                                                             inputs.shape[c_ax])
    key_mask = None
    if mask is not None:
      mask = jnp.all(jnp.broadcast_to(mask, inputs.shape), c_ax, keepdims=True)
      key_mask = jnp.moveaxis(mask, (b_ax, c_ax), (0, -1)).reshape(n, -1)
    x_qk = x_val = x
    if use_pos:
      p = jnp.moveaxis(pos, (b_ax, c_ax), (0, -1))
      p = p.reshape(1, -1, p.shape[-1])
      if pos_emb_decay_fn is not None:
        p = jnp.einsum("st,ntc->nsc", pos_root(sp_shape).astype(p.dtype), p)
      p = W_pos_emb_std * p
      if key_mask is not None:
        p = jnp.where(key_mask[..., None], jnp.zeros((), p.dtype), p)
      if pos_kind is PositionalEmbedding.SUM:
        x_qk = x + p
      else:
        p = jnp.broadcast_to(p, x.shape[:2] + p.shape[2:])
        x_qk = jnp.concatenate([x, p], -1)
      x_val = x_qk if val_pos_emb else x
    keys = jnp.einsum("nsc,hcd->hnsd", x_qk, w_key)
    queries = keys if linear_scaling else jnp.einsum("nsc,hcd->hnsd", x_qk,
                                                     w_query)
    alpha = 1. if linear_scaling else 0.5
    logits = jnp.einsum("hnsd,hntd->hnst", queries, keys) * (
        qk_std / (x_qk.shape[-1] * n_chan_key ** alpha))
    weights = mechanism.weights(
        logits, None if key_mask is None else key_mask[None, :, None, :])
    values = jnp.einsum("nsc,hcd->hnsd", x_val, w_val)
    heads = jnp.einsum("hnst,hntd->nshd", weights, values)
    heads = heads.reshape(heads.shape[:2] + (-1,))
    out = heads @ w_out * (ov_std / math.sqrt(n_heads * n_chan_val *
                                              x_val.shape[-1]))
    out = jnp.moveaxis(out.reshape((n,) + sp_shape + (n_chan_out,)), (0, -1),
                       (b_ax, c_ax))
    return out if b is None else out + b_std * b

  rule = _attention_kernel.make_rule(
      mechanism=mechanism, linear_scaling=linear_scaling, qk_std=qk_std,
      ov_std=ov_std, b_std=b_std, pos_kind=pos_kind,
      pos_emb_p_norm=pos_emb_p_norm, pos_emb_decay_fn=pos_emb_decay_fn,
      n_chan_pos_emb=n_chan_pos_emb, w_pos_emb_std=W_pos_emb_std,
      val_pos_emb=val_pos_emb)

  def mask_fn(mask, input_shape):
    del input_shape
    return jnp.all(mask, axis=channel_axis, keepdims=True)

  return make_layer("GlobalSelfAttention", init_fn, apply_fn, rule,
                    Requirements(batch_axis=batch_axis,
                                 channel_axis=channel_axis,
                                 diagonal_spatial=Diag.NEEDS_FULL,
                                 remask=True),
                    mask_fn)
