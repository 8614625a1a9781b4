"""Attention mechanisms and the parsing of `GlobalSelfAttention`'s enum options.

`AttentionMechanism` (the map from logits to attention weights) is the
core's `ntcore.enums.AttentionMechanism`, so `stax.AttentionMechanism.RELU`
and the plugin's name are one enum.
"""

from __future__ import annotations

from ntcore import enums
from ntcore.enums import AttentionMechanism

__all__ = ["AttentionMechanism", "parse"]


def parse(value, enum_cls, arg: str):
  """`value` as a member of `enum_cls`: a member of it or of the core's enum
  of that name, or the name in any case ("softmax").

  Raises:
    ntcore.enums.ChoiceError: (a ValueError) naming the choices.
  """
  return enums.parse(enum_cls, value, f"GlobalSelfAttention({arg}")
