"""NT-compatible `stax` namespace.

Combinators are defined in the core; every other name (`stax.Dense`,
`stax.Relu`, `stax.Conv`, ...) resolves through the layer registry to the
plugin that registers it. An unknown or uninstalled name raises
`LayerNotInstalledError` (also an `AttributeError`) naming the plugin to
install. A name two plugins register is reachable qualified:
`stax.layer("nt-conv:Conv")`.
"""

from ntcore.combinators import (FanInConcat, FanInProd, FanInSum, FanOut,
                                Identity, parallel, repeat, serial)
from ntcore.layer import Layer
from ntcore.registry import get_registry

__all__ = ["FanInConcat", "FanInProd", "FanInSum", "FanOut", "Identity",
           "Layer", "layer", "parallel", "repeat", "serial"]


def layer(name: str):
  """The factory of a layer by name, bare (`"Dense"`) or qualified (`"nt-dense:Dense"`)."""
  return get_registry().layers.get(name).factory


def __getattr__(name: str):
  if name.startswith("__"):
    raise AttributeError(name)
  return layer(name)


def __dir__():
  return sorted(set(__all__) | set(get_registry().layers.by_name))
