"""ntcore: infinite-width neural networks, NNGP and NTK kernels, with plugins.

`import ntcore as nt; from ntcore import stax` runs Neural Tangents 0.6.5
programs. Layers come from plugins (`nt-dense`, `nt-conv`, ...); estimators
such as `nt.monte_carlo_kernel_fn` and `nt.linearize` resolve through the
registry to the plugin that provides them.
"""

import importlib
import importlib.util

from ntcore import stax
from ntcore.errors import (KernelRequirementError, LayerNameClashError,
                           LayerNotInstalledError, NtcoreError, ShapeError)
from ntcore.kernel import Kernel
from ntcore.kernel_fn import KernelFn
from ntcore.layer import (GAUSSIAN_INPUT, Diag, Layer, Requirements,
                          elementwise_layer, make_layer)
from ntcore.parallel import batch
from ntcore.registry import get_registry

__version__ = importlib.metadata.version("ntcore-jax")

__all__ = [
    "Diag", "GAUSSIAN_INPUT", "Kernel", "KernelFn", "KernelRequirementError",
    "Layer", "LayerNameClashError", "LayerNotInstalledError", "NtcoreError",
    "Requirements", "ShapeError", "batch", "elementwise_layer", "get_registry",
    "make_layer", "stax",
]


def __getattr__(name: str):
  # Submodules (`predict`, `testing`, `kernel_ops`, ...) import lazily and
  # never touch the registry; any other name is an estimator from a plugin.
  if name.startswith("__"):
    raise AttributeError(name)
  if importlib.util.find_spec(f"ntcore.{name}") is not None:
    return importlib.import_module(f"ntcore.{name}")
  return get_registry().estimators.get(name).fn
