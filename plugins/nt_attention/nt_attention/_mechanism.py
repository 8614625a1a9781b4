"""Attention mechanisms: the map from logits to attention weights."""

from __future__ import annotations

import enum
from typing import Optional

import jax.numpy as jnp


class AttentionMechanism(enum.Enum):
  """`phi` in `phi(Q K^T) V` (NT's names); SOFTMAX normalizes over keys."""

  SOFTMAX = "SOFTMAX"
  IDENTITY = "IDENTITY"
  ABS = "ABS"
  RELU = "RELU"

  def weights(self, logits, key_mask: Optional[jnp.ndarray] = None,
              key_axes: tuple[int, ...] = (-1,)):
    """Attention weights from `logits`; masked keys get weight zero.

    Args:
      logits: `(..., S_query, S_key)` (or any layout with `key_axes`).
      key_mask: boolean, broadcastable to `logits`, True at masked keys.
      key_axes: the axes a softmax normalizes over.

    A softmax over keys that are all masked gives zero weights (NT gives
    uniform weights over the masked keys there; the outputs are masked in
    both cases).
    """
    zero = jnp.zeros((), logits.dtype)
    if self is AttentionMechanism.SOFTMAX:
      if key_mask is None:
        top = jnp.max(logits, key_axes, keepdims=True)
        e = jnp.exp(logits - top)
        return e / jnp.sum(e, key_axes, keepdims=True)
      # max over unmasked keys only, so no masked logit ever reaches exp.
      low = jnp.finfo(logits.dtype).min
      top = jnp.max(jnp.where(key_mask, low, logits), key_axes, keepdims=True)
      e = jnp.where(key_mask, zero, jnp.exp(jnp.where(key_mask, zero,
                                                       logits - top)))
      total = jnp.sum(e, key_axes, keepdims=True)
      return e / jnp.where(total > 0, total, 1.)
    if key_mask is not None:
      logits = jnp.where(key_mask, zero, logits)
    if self is AttentionMechanism.IDENTITY:
      return logits
    if self is AttentionMechanism.ABS:
      return jnp.abs(logits)
    return jnp.maximum(logits, zero)


def parse(value, enum_cls, arg: str):
  """`enum_cls(value)` (case-insensitive), with a message naming the choices."""
  if isinstance(value, enum_cls):
    return value
  try:
    return enum_cls(str(value).upper())
  except ValueError:
    choices = ", ".join(repr(m.value) for m in enum_cls)
    raise ValueError(f"GlobalSelfAttention({arg}={value!r}): expected one of "
                     f"{choices}.") from None
