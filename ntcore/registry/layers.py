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
import warnings
from typing import Any, Optional

import pluggy

from ntcore import errors
from ntcore.registry import providers
from ntcore.registry.manager import LoadError, PluginLoadWarning, call_one


class SpecRegistry:
  """The specs one hook (`register_layers`, ...) collected, by name.

  Args:
    pm: the plugin manager.
    hook: the hook's name.
    what: "layer", "estimator" or "ODE solver", for messages.
    where: prefix of names in messages (`"stax."`).
    known: name -> distribution of the plugins that provide them.
  """

  def __init__(self, pm: pluggy.PluginManager, hook: str, what: str,
               where: str = "", known: Optional[dict] = None):
    self.what, self.where = what, where
    self.known = known or {}
    self.errors: list[LoadError] = []
    self.by_name: dict[str, list[Any]] = {}
    impls = getattr(pm.hook, hook).get_hookimpls()
    for impl in sorted(impls, key=lambda i: pm.get_name(i.plugin)):
      plugin = pm.get_name(impl.plugin)
      try:
        specs = list(call_one(pm, hook, impl) or [])
      except Exception as e:  # pylint: disable=broad-except
        msg = f"{type(e).__name__}: {e}"
        self.errors.append(LoadError(plugin, "", f"{hook}: {msg}"))
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
      LayerNotInstalledError: no loaded plugin registers `name`.
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
    raise errors.LayerNotInstalledError(self._not_installed(name, bare))

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
        installed="; ".join(installed) or "none", provider=provider).rstrip()
