"""NT's enums of layer options: `Padding`, `AttentionMechanism`, ... .

NT 0.6.5 exposes these in `stax` with the member names and values below.
Here they are `str` enums, so `Padding.SAME == "SAME"` and code comparing
against strings keeps working; layers take a member or its name (any case)
and turn it into a member with `parse`. NT's other public enums: `Bool`
lives with `Diagonal` in `ntcore.diagonal` (re-exported here), and
`NtkImplementation` comes with the estimators of the nt-montecarlo plugin.
"""

from __future__ import annotations

import enum
from typing import Optional, TypeVar

import jax
import jax.numpy as jnp

from ntcore.diagonal import Bool  # NT's stax.Bool, defined with Diagonal
from ntcore.errors import NtcoreError

__all__ = ["AggregateImplementation", "AttentionMechanism", "Bool",
           "ChoiceError", "Padding", "PositionalEmbedding", "parse"]


class ChoiceError(NtcoreError, ValueError):
  """A layer option that is none of its enum's choices."""


class _StrEnum(str, enum.Enum):
  """A `str` enum whose `str()` and format are its value, as NT's names."""

  def __str__(self) -> str:
    return self.value

  def __format__(self, spec: str) -> str:
    return format(self.value, spec)


class Padding(_StrEnum):
  """Padding of convolutions and pooling.

  Attributes:
    CIRCULAR: periodic, as if the input were a torus (outputs sized as SAME).
    SAME: zero padding, output size `ceil(size / stride)`.
    VALID: no padding.
  """

  CIRCULAR = "CIRCULAR"
  SAME = "SAME"
  VALID = "VALID"


class PositionalEmbedding(_StrEnum):
  """How `GlobalSelfAttention` uses positional embeddings.

  Attributes:
    NONE: no positional embeddings.
    SUM: embeddings added to the activations.
    CONCAT: embeddings appended to the activations as channels.
  """

  NONE = "NONE"
  SUM = "SUM"
  CONCAT = "CONCAT"


class AggregateImplementation(_StrEnum):
  """How `Aggregate` reads its graph.

  Attributes:
    DENSE: a (weighted) adjacency tensor; best for dense graphs.
    SPARSE: a list of arcs; best for sparse graphs (`E ~ V` edges).
  """

  DENSE = "DENSE"
  SPARSE = "SPARSE"


class AttentionMechanism(_StrEnum):
  """`phi` in the attention weights `phi(Q K^T / sqrt(d))`.

  Attributes:
    SOFTMAX: softmax over the keys.
    IDENTITY: the logits themselves.
    ABS: `|logits|`.
    RELU: `max(logits, 0)`.
  """

  SOFTMAX = "SOFTMAX"
  IDENTITY = "IDENTITY"
  ABS = "ABS"
  RELU = "RELU"

  def fn(self):
    """`phi` as a function of the logits (softmax over the last axis), as NT."""
    return {
        AttentionMechanism.SOFTMAX: lambda x: jax.nn.softmax(x, axis=-1),
        AttentionMechanism.IDENTITY: lambda x: x,
        AttentionMechanism.ABS: jnp.abs,
        AttentionMechanism.RELU: lambda x: jnp.maximum(x, 0.),
    }[self]

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


E = TypeVar("E", bound=enum.Enum)


def parse(enum_cls: type[E], value, where: str) -> E:
  """`value` as a member of `enum_cls`.

  Accepts a member, a member of another enum with the same name (NT's own
  `stax.Padding.SAME`, or a plugin's enum), or the name as a string in any
  case (`"same"`).

  Args:
    enum_cls: the enum to parse into.
    value: what the user passed.
    where: the argument as the user wrote it, e.g. `"Conv(padding"`; the
      message appends `=<value>)`.

  Raises:
    ChoiceError: `value` names none of the members.
  """
  if isinstance(value, enum_cls):
    return value
  name = value.name if isinstance(value, enum.Enum) else value
  if isinstance(name, str) and name.upper() in enum_cls.__members__:
    return enum_cls[name.upper()]
  names = [repr(m.name) for m in enum_cls]
  choices = ", ".join(names[:-1]) + " or " + names[-1]
  raise ChoiceError(
      f"{where}={value!r}): expected {choices} (any case), or a member of "
      f"stax.{enum_cls.__name__} such as stax.{enum_cls.__name__}."
      f"{next(iter(enum_cls)).name}.")
