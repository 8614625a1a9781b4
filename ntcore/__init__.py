"""ntcore: infinite-width neural networks, NNGP and NTK kernels, with plugins.

`import ntcore as nt; from ntcore import stax` runs Neural Tangents 0.6.5
programs. Layers come from plugins (`nt-dense`, `nt-conv`, ...); estimators
such as `nt.monte_carlo_kernel_fn` and `nt.linearize` resolve through the
registry to the plugin that provides them.
"""

import importlib
import importlib.metadata
import importlib.util

from ntcore import _malloc, _xla_flags

_xla_flags.add_flags()
_malloc.configure()

from ntcore.errors import (EstimatorNotInstalledError, KernelRequirementError,
                           LayerNameClashError, LayerNotInstalledError,
                           NtcoreError, PluginNotInstalledError, ShapeError)

__version__ = importlib.metadata.version("ntcore-jax")

# Names defined in modules that import jax: imported on first use, so that
# `import ntcore` (and `ntcore --version`) stays quick.
_LAZY = {
    "Diag": "ntcore.requirements", "GAUSSIAN_INPUT": "ntcore.requirements",
    "Need": "ntcore.requirements", "Requirements": "ntcore.requirements",
    "Layer": "ntcore.layer",
    "elementwise_layer": "ntcore.layer", "make_layer": "ntcore.layer",
    "Kernel": "ntcore.kernel", "KernelFn": "ntcore.kernel_fn",
    "batch": "ntcore.parallel", "get_registry": "ntcore.registry",
    "load_kernel": "ntcore.kernel_file",
}

__all__ = [
    "Diag", "EstimatorNotInstalledError", "GAUSSIAN_INPUT", "Kernel",
    "KernelFn", "KernelRequirementError", "Layer", "LayerNameClashError",
    "LayerNotInstalledError", "Need", "NtcoreError", "PluginNotInstalledError",
    "Requirements", "ShapeError", "batch", "elementwise_layer", "get_registry",
    "load_kernel", "make_layer", "stax",
]


def __getattr__(name: str):
  # Submodules (`predict`, `testing`, `kernel_ops`, ...) import lazily and
  # never touch the registry; any other name is an estimator from a plugin.
  if name.startswith("__"):
    raise AttributeError(name)
  if name in _LAZY:
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
  if importlib.util.find_spec(f"ntcore.{name}") is not None:
    return importlib.import_module(f"ntcore.{name}")
  registry = importlib.import_module("ntcore.registry")
  return registry.get_registry().estimators.get(name).load()
