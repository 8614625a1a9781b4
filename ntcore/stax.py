"""NT-compatible `stax` namespace.

Combinators, NT's custom-layer decorators (`layer`, `requires`,
`supports_masking`, `unmask_fn`, `Diagonal`, `Bool`, `MaskedArray`) and NT's
enums are defined in the core; every other name (`stax.Dense`, `stax.Relu`,
`stax.Conv`, ...) resolves through the layer registry to the plugin that
registers it. An unknown or uninstalled name raises `LayerNotInstalledError`
(also an `AttributeError`) naming the plugin to install. A name two plugins
register is reachable qualified: `stax.from_registry("nt-conv:Conv")`.
"""

import importlib

from ntcore.combinators import (FanInConcat, FanInProd, FanInSum, FanOut,
                                Identity, parallel, repeat, serial)
from ntcore.decorators import layer, requires, supports_masking
from ntcore.diagonal import Bool, Diagonal
from ntcore.layer import Layer
from ntcore.masked import MaskedArray, unmask_fn
from ntcore.registry import get_registry

_ENUMS = ("AggregateImplementation", "AttentionMechanism", "Padding",
          "PositionalEmbedding")

__all__ = ["Bool", "Diagonal", "FanInConcat", "FanInProd", "FanInSum",
           "FanOut", "Identity", "Layer", "MaskedArray", "from_registry",
           "layer", "parallel", "repeat", "requires", "serial",
           "supports_masking", "unmask_fn", *_ENUMS]


def from_registry(name: str):
  """The factory of a layer by name, bare (`"Dense"`) or qualified (`"nt-dense:Dense"`)."""
  return get_registry().layers.get(name).factory


def __getattr__(name: str):
  if name.startswith("__"):
    raise AttributeError(name)
  if name in _ENUMS:
    return getattr(importlib.import_module("ntcore.enums"), name)
  return from_registry(name)


def __dir__():
  return sorted(set(__all__) | set(get_registry().layers.by_name))
