"""Build the plugin manager: load `ntcore` entry points one at a time.

pluggy's own `load_setuptools_entrypoints` stops at the first plugin that
fails to import; here each entry point loads inside its own `try`, failures
are recorded (and warned about) and the rest still load.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import sys
import warnings
from typing import Iterable, Optional

import pluggy

from ntcore import errors as errors_module
from ntcore.registry import hookspecs

GROUP = "ntcore"
LOAD_ENV = "NTCORE_LOAD_PLUGINS"
TRACE_ENV = "NTCORE_TRACE_PLUGINS"


class PluginLoadWarning(UserWarning):
  """A plugin failed to load; the others are available."""


@dataclasses.dataclass(frozen=True)
class LoadError:
  """A plugin that could not be loaded: `(distribution, version, error)`."""

  plugin: str
  version: str
  error: str


def normalize(name: str) -> str:
  """Distribution names compare case- and `-`/`_`-insensitively."""
  return name.strip().lower().replace("_", "-")


def selected_plugins(value: Optional[str] = None) -> Optional[set[str]]:
  """The distributions `NTCORE_LOAD_PLUGINS` selects; None means all."""
  value = os.environ.get(LOAD_ENV) if value is None else value
  if value is None:
    return None
  return {normalize(v) for v in value.split(",") if v.strip()}


def new_manager() -> pluggy.PluginManager:
  """An empty manager that knows the ntcore hookspecs."""
  pm = pluggy.PluginManager("ntcore")
  pm.add_hookspecs(hookspecs)
  if os.environ.get(TRACE_ENV):
    def before(hook_name, hook_impls, kwargs):
      print(f"ntcore: calling {hook_name} on "
            f"{[pm.get_name(i.plugin) for i in hook_impls]}", file=sys.stderr)

    def after(outcome, hook_name, hook_impls, kwargs):
      del outcome, hook_impls, kwargs
      print(f"ntcore: {hook_name} done", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)
  return pm


def register(pm: pluggy.PluginManager, plugin, name: str) -> None:
  """Registers one plugin and validates its hooks (a typo fails loudly)."""
  pm.register(plugin, name=name)
  try:
    pm.check_pending()
  except Exception:
    pm.unregister(name=name)
    raise


def call_one(pm: pluggy.PluginManager, hook_name: str, impl, **kwargs):
  """Calls one plugin's implementation of `hook_name`; returns its result.

  The registries and the CLI call each plugin on its own, so every result is
  attributed to its plugin and one failure does not hide the others. Such
  calls bypass `pm.hook`, so `NTCORE_TRACE_PLUGINS` is honoured here too.
  An implementation receives only the arguments it declares (pluggy's rule).
  """
  trace = os.environ.get(TRACE_ENV)
  if trace:
    print(f"ntcore: calling {hook_name} on [{impl.plugin_name!r}]",
          file=sys.stderr)
  result = impl.function(*(kwargs[name] for name in impl.argnames))
  if trace:
    print(f"ntcore: {hook_name} done", file=sys.stderr)
  return result


def _check_selection(only: set[str], entry_points: list) -> None:
  """Warns when `NTCORE_LOAD_PLUGINS` names a plugin that is not installed."""
  installed = [ep.name for ep in entry_points]
  unknown = sorted(only - {normalize(n) for n in installed})
  if unknown:
    warnings.warn(errors_module.UNKNOWN_SELECTED_PLUGIN.format(
        env=LOAD_ENV, names=", ".join(unknown),
        installed=", ".join(installed) or "none"),
                  errors_module.UnknownPluginWarning, stacklevel=3)


def load_entry_points(pm: pluggy.PluginManager,
                      entry_points: Optional[Iterable] = None,
                      only: Optional[set[str]] = None) -> list[LoadError]:
  """Loads `ntcore` entry points into `pm`, each on its own.

  Args:
    pm: the manager to register into.
    entry_points: defaults to the installed ones of group `ntcore`.
    only: distributions to load (None: all); defaults to
      `NTCORE_LOAD_PLUGINS`.

  Returns:
    One `LoadError` per plugin that failed; each also emits a
    `PluginLoadWarning` naming it. A name in `only` that no entry point has
    emits an `UnknownPluginWarning` listing the installed plugins.
  """
  if entry_points is None:
    entry_points = importlib.metadata.entry_points(group=GROUP)
  if only is None:
    only = selected_plugins()
  errors = []
  entry_points = sorted(entry_points, key=lambda e: e.name)
  if only:
    _check_selection(only, entry_points)
  for ep in entry_points:
    if only is not None and normalize(ep.name) not in only:
      continue
    if pm.has_plugin(ep.name):
      continue
    dist = getattr(ep, "dist", None)
    version = getattr(dist, "version", "") or ""
    try:
      register(pm, ep.load(), ep.name)
    except Exception as e:  # pylint: disable=broad-except
      msg = f"{type(e).__name__}: {e}"
      errors.append(LoadError(ep.name, version, msg))
      warnings.warn(f"ntcore plugin {ep.name} {version} failed to load and is "
                    f"skipped ({msg}); the other plugins are available.",
                    PluginLoadWarning, stacklevel=2)
  return errors
