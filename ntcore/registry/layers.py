"""Registries of what plugins offer: layers, estimators, ODE solvers.

Each plugin's hook implementation is called on its own (via
`get_hookimpls()`), so every spec is attributed to its plugin and one broken
hook does not take the others down. Two plugins offering one name is a
clash: both stay usable under qualified names (`nt-conv:Conv`), the bare
name raises `LayerNameClashError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import warnings
from typing import Any, Optional

import pluggy

from ntcore import errors
from ntcore.registry import providers
from ntcore.registry.manager import (LOAD_ENV, LoadError, PluginLoadWarning,
                                     call_one)
from ntcore.registry.specs import EstimatorSpec, LayerSpec, OdeSolverSpec

SPEC_TYPES = {"register_layers": LayerSpec,
              "register_estimators": EstimatorSpec,
              "register_ode_solvers": OdeSolverSpec}
"""What each collecting hook must return a list of."""

NOT_INSTALLED = {"register_layers": errors.LayerNotInstalledError,
                 "register_estimators": errors.EstimatorNotInstalledError,
                 "register_ode_solvers": errors.OdeSolverNotInstalledError}
"""What `SpecRegistry.get` raises for a name no plugin registers, by hook;
`PluginNotInstalledError` (their base) for any other hook."""


def check_specs(result: Any, hook: str, spec_type: Optional[type]) -> list:
  """A hook's result as a list of `spec_type`, or a `PluginHookError`.

  Checked where it is collected, so that a plugin returning garbage loses
  only its own entries, with a message saying what it returned.
  """
  spec_type = spec_type or SPEC_TYPES.get(hook)
  expected = spec_type.__name__ if spec_type is not None else "spec"
  if not isinstance(result, (list, tuple)):
    raise errors.PluginHookError(errors.BAD_HOOK_RESULT.format(
        hook=hook, expected=expected,
        got=f"{type(result).__name__} {_short(result)}"))
  for i, spec in enumerate(result):
    if not (isinstance(spec, spec_type) if spec_type is not None
            else dataclasses.is_dataclass(spec) and hasattr(spec, "name")):
      raise errors.PluginHookError(errors.BAD_HOOK_RESULT.format(
          hook=hook, expected=expected,
          got=f"a list whose item {i} is {type(spec).__name__} "
              f"{_short(spec)}"))
    name = spec.name
    attribute = hook in ("register_layers", "register_estimators")
    if not isinstance(name, str) or not name or ":" in name or (
        attribute and not name.isidentifier()):
      raise errors.PluginHookError(
          f"{hook} returned a {expected} named {name!r}; a name must be a "
          + ("Python identifier (it is looked up as an attribute)."
             if attribute else "non-empty string without ':'."))
  return list(result)


def _short(obj: Any) -> str:
  text = repr(obj)
  return f"({text[:60]}...)" if len(text) > 60 else f"({text})"


class SpecRegistry:
  """The specs one hook (`register_layers`, ...) collected, by name.

  Args:
    pm: the plugin manager.
    hook: the hook's name.
    what: "layer", "estimator" or "ODE solver", for messages.
    where: prefix of names in messages (`"stax."`).
    known: name -> distribution of the plugins that provide them.
    spec_type: the spec class every entry must be; defaults to the hook's
      (`SPEC_TYPES`). A plugin returning anything but a list of them is
      recorded in `errors` and skipped.
  """

  def __init__(self, pm: pluggy.PluginManager, hook: str, what: str,
               where: str = "", known: Optional[dict] = None,
               spec_type: Optional[type] = None):
    self.what, self.where = what, where
    self.not_installed = NOT_INSTALLED.get(hook,
                                           errors.PluginNotInstalledError)
    self.known = known or {}
    self.errors: list[LoadError] = []
    self.by_name: dict[str, list[Any]] = {}
    impls = getattr(pm.hook, hook).get_hookimpls()
    for impl in sorted(impls, key=lambda i: pm.get_name(i.plugin)):
      plugin = pm.get_name(impl.plugin)
      try:
        specs = check_specs(call_one(pm, hook, impl), hook, spec_type)
      except Exception as e:  # pylint: disable=broad-except
        # A bad result's message already starts with the hook's name.
        msg = str(e) if isinstance(e, errors.PluginHookError) else (
            f"{hook}: {type(e).__name__}: {e}")
        self.errors.append(LoadError(plugin, "", msg))
        warnings.warn(f"ntcore plugin {plugin}: {hook} failed ({msg}); its "
                      f"{what}s are skipped.", PluginLoadWarning, stacklevel=2)
        continue
      for spec in specs:
        spec = dataclasses.replace(spec, plugin=plugin)
        self.by_name.setdefault(spec.name, []).append(spec)

  def specs(self) -> list:
    """Every spec, sorted by name then plugin."""
    return [s for name in sorted(self.by_name) for s in self.by_name[name]]

  def clashes(self) -> dict[str, list[str]]:
    """Names registered by more than one plugin -> those plugins."""
    return {n: [s.plugin for s in ss] for n, ss in self.by_name.items()
            if len(ss) > 1}

  def plugins(self) -> list[str]:
    return sorted({s.plugin for ss in self.by_name.values() for s in ss})

  def __contains__(self, name: str) -> bool:
    try:
      self.get(name)
      return True
    except errors.NtcoreError:
      return False

  def get(self, name: str):
    """The spec for a bare (`Conv`) or qualified (`nt-conv:Conv`) name.

    Raises:
      PluginNotInstalledError: no loaded plugin registers `name`; the
        subclass for the hook (`NOT_INSTALLED`: `LayerNotInstalledError` for
        layers, `EstimatorNotInstalledError`, `OdeSolverNotInstalledError`).
      LayerNameClashError: several plugins register the bare `name`.
    """
    plugin, _, bare = name.rpartition(":")
    specs = self.by_name.get(bare, [])
    if plugin:
      specs = [s for s in specs if s.plugin == plugin]
    if len(specs) == 1:
      return specs[0]
    if len(specs) > 1:
      raise errors.LayerNameClashError(errors.CLASH.format(
          name=f"{self.where}{bare}",
          plugins=" and ".join(s.plugin for s in specs),
          qualified=", ".join(f"'{s.plugin}:{bare}'" for s in specs)))
    raise self.not_installed(self._not_installed(name, bare))

  def _selection(self) -> str:
    """Why a plugin may be installed yet not loaded: `NTCORE_LOAD_PLUGINS`."""
    value = os.environ.get(LOAD_ENV)
    if value is None:
      return ""
    return errors.LOAD_ENV_SELECTS.format(env=LOAD_ENV, value=value)

  def _not_installed(self, name: str, bare: str) -> str:
    installed = []
    for plugin in self.plugins():
      names = [n for n, ss in sorted(self.by_name.items())
               if any(s.plugin == plugin for s in ss)]
      more = ", ..." if len(names) > 4 else ""
      installed.append(f"{plugin} ({', '.join(names[:4])}{more})")
    dist = self.known.get(bare)
    if dist:
      provider = errors.PROVIDED_BY.format(
          name=bare, dist=dist, install=providers.install_line(dist))
    else:
      close = difflib.get_close_matches(
          bare, set(self.by_name) | set(self.known), n=3)
      suggest = f" Did you mean {', '.join(close)}?" if close else ""
      provider = errors.UNKNOWN_NAME.format(name=name, suggest=suggest)
    return errors.NOT_INSTALLED.format(
        where=self.where, name=name, what=self.what,
        installed="; ".join(installed) or "none",
        provider=provider + self._selection()).rstrip()
