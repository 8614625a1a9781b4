"""Plugin registry: hookspecs, the plugin manager and what plugins register.

Plugins import `hookimpl` and the spec classes from here::

    from ntcore.registry import LayerSpec, hookimpl

    @hookimpl
    def register_layers():
        return [LayerSpec("Swish", Swish, kernel="numerical")]
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator, Optional

import pluggy

from ntcore.registry import providers
from ntcore.registry.executors import ExecutorSpec, executor_registry
from ntcore.registry.hookspecs import hookimpl, hookspec
from ntcore.registry.layers import SpecRegistry
from ntcore.registry.manager import (GROUP, LOAD_ENV, LoadError,
                                     PluginLoadWarning, load_entry_points,
                                     new_manager, register)
from ntcore.registry.specs import EstimatorSpec, LayerSpec, OdeSolverSpec

__all__ = [
    "EstimatorSpec", "ExecutorSpec", "GROUP", "LOAD_ENV", "LayerSpec",
    "LoadError", "OdeSolverSpec", "PluginLoadWarning", "Registry", "SpecRegistry",
    "get_registry", "hookimpl", "hookspec", "load_entry_points",
    "new_manager", "register", "registry_holding", "reset", "use_registry",
]


class Registry:
  """Everything the loaded plugins offer, built from one plugin manager."""

  def __init__(self, pm: pluggy.PluginManager,
               load_errors: Optional[list[LoadError]] = None):
    self.pm = pm
    self.load_errors = list(load_errors or [])

  @functools.cached_property
  def layers(self) -> SpecRegistry:
    return SpecRegistry(self.pm, "register_layers", "layer", "stax.",
                        providers.LAYER_PROVIDERS)

  @functools.cached_property
  def estimators(self) -> SpecRegistry:
    return SpecRegistry(self.pm, "register_estimators", "estimator",
                        "ntcore.", providers.ESTIMATOR_PROVIDERS)

  @functools.cached_property
  def ode_solvers(self) -> SpecRegistry:
    return SpecRegistry(self.pm, "register_ode_solvers", "ODE solver", "",
                        {})

  @functools.cached_property
  def executors(self) -> SpecRegistry:
    return executor_registry(self.pm)

  def errors(self) -> list[LoadError]:
    """Load failures and hook failures, in plugin order."""
    return (self.load_errors + self.layers.errors + self.estimators.errors
            + self.ode_solvers.errors + self.executors.errors)


_REGISTRY: Optional[Registry] = None
_LOADING = False


def get_registry() -> Registry:
  """The registry of the installed plugins (`NTCORE_LOAD_PLUGINS` selects)."""
  global _REGISTRY, _LOADING
  if _REGISTRY is None:
    if _LOADING:
      # A plugin being imported asked `ntcore` for a name it does not have yet
      # (`from ntcore import kernel_ops` calls `ntcore.__getattr__` before
      # importing the submodule). Answer from an empty registry instead of
      # loading every plugin again, recursively, from inside that import.
      return Registry(new_manager())
    _LOADING = True
    try:
      pm = new_manager()
      errors = load_entry_points(pm)
      _REGISTRY = Registry(pm, errors)
    finally:
      _LOADING = False
  return _REGISTRY


def use_registry(registry: Optional[Registry]) -> Optional[Registry]:
  """Replaces the global registry (None: rebuild on next use); returns the old one."""
  global _REGISTRY
  old, _REGISTRY = _REGISTRY, registry
  return old


@contextlib.contextmanager
def registry_holding(*plugins: tuple[str, object]) -> Iterator[Registry]:
  """Inside the block, the global registry holds exactly `plugins`.

  `plugins` are `(entry-point name, plugin module)` pairs, registered as
  `register` does, so a plugin's tests resolve its names whatever else is
  installed. The previous registry comes back after the block.
  """
  pm = new_manager()
  for name, plugin in plugins:
    register(pm, plugin, name)
  previous = use_registry(Registry(pm))
  try:
    yield get_registry()
  finally:
    use_registry(previous)


def reset() -> None:
  """Forgets the global registry; the next use reloads the entry points."""
  use_registry(None)
