"""Regenerates `ntcore/registry/providers.json` from the installed plugins.

    python scripts/write_providers.py          # rewrite the file
    python scripts/write_providers.py --check  # exit 1 if it is stale

The file tells users which monorepo plugin provides a name they have not
installed. Run this after a plugin under `plugins/` adds, renames or drops a
layer, estimator or ODE solver, with every monorepo plugin installed
(`scripts/setup.sh`); `tests/test_architecture.py` fails until it is run.
Plugins outside `plugins/` (the examples, third parties) are not in it.
"""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import sys
import tomllib
import warnings

from ntcore import registry
from ntcore.registry import manager, providers

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "ntcore" / "registry" / providers.DATA_FILE


def monorepo_plugins(root: pathlib.Path = ROOT) -> dict[str, str]:
  """Distribution name -> package folder of every `plugins/*/pyproject.toml`."""
  found = {}
  for toml in sorted((root / "plugins").glob("*/pyproject.toml")):
    with toml.open("rb") as f:
      found[tomllib.load(f)["project"]["name"]] = toml.parent.name
  return found


def installed_registry() -> registry.Registry:
  """A fresh registry of every installed plugin, `NTCORE_LOAD_PLUGINS` or not.

  Raises:
    RuntimeError: a plugin failed to load or a hook failed (its names
      would be missing from the table).
  """
  eps = list(importlib.metadata.entry_points(group=manager.GROUP))
  pm = registry.new_manager()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", registry.PluginLoadWarning)
    reg = registry.Registry(pm, registry.load_entry_points(
        pm, eps, only={manager.normalize(ep.name) for ep in eps}))
    failed = reg.load_errors + [e for kind in providers.KINDS
                                for e in getattr(reg, kind).errors]
  if failed:
    raise RuntimeError("installed plugins failed to load: " + "; ".join(
        f"{e.plugin}: {e.error}" for e in failed))
  return reg


def build(reg: registry.Registry, plugins: dict[str, str]) -> dict:
  """The table for `plugins` (dist -> package), from what `reg` holds."""
  data = {"packages": dict(sorted(plugins.items()))}
  for kind in providers.KINDS:
    by_plugin: dict[str, list[str]] = {}
    for spec in getattr(reg, kind).specs():
      if spec.plugin in plugins:
        by_plugin.setdefault(spec.plugin, []).append(spec.name)
    data[kind] = {dist: sorted(names)
                  for dist, names in sorted(by_plugin.items())}
  return data


def render(data: dict) -> str:
  """The file's text: one stable layout, so a stale file shows as a diff."""
  return json.dumps(data, indent=2) + "\n"


def main(argv: list[str], data: pathlib.Path = DATA) -> int:
  """Writes (or with `--check` compares) the table at `data`; the exit code."""
  plugins = monorepo_plugins()
  reg = installed_registry()
  missing = sorted(set(plugins) - {name for name, _ in
                                   reg.pm.list_name_plugin()})
  if missing:
    print(f"not installed: {', '.join(missing)}; install every monorepo "
          f"plugin first (scripts/setup.sh).", file=sys.stderr)
    return 2
  text = render(build(reg, plugins))
  if argv == ["--check"]:
    stale = not data.is_file() or data.read_text(encoding="utf-8") != text
    if stale:
      print(f"{data} is stale: run python scripts/write_providers.py",
            file=sys.stderr)
    return int(stale)
  if argv:
    print(__doc__, file=sys.stderr)
    return 2
  data.write_text(text, encoding="utf-8")
  print(f"wrote {data}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
