"""Which plugin provides which name, and how to install it.

Strings only: nothing here imports a plugin. Used to tell a user what to
install. The table is data, `providers.json` beside this module (shipped as
package data), read on first use: which package each monorepo plugin
distribution imports as, and which layers, estimators and ODE solvers it
registers. Adding a layer to a monorepo plugin means regenerating that file
from the installed plugins,

    python scripts/write_providers.py

not editing code; `tests/test_architecture.py` fails while it is stale.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import pathlib
from typing import Any

from ntcore import errors

CORE_DISTRIBUTION = "ntcore-jax"
"""The core's distribution name (`pip install ntcore-jax`); it imports as
`ntcore`. The distribution `ntcore` on PyPI is an unrelated project."""

DATA_FILE = "providers.json"
"""The table's file name, in the `ntcore.registry` package."""

KINDS = ("layers", "estimators", "ode_solvers")
"""What the table attributes to plugins; each is a `Registry` attribute."""

# Module attribute -> the kind whose name -> distribution map it is.
_BY_NAME = {"LAYER_PROVIDERS": "layers",
            "ESTIMATOR_PROVIDERS": "estimators",
            "ODE_SOLVER_PROVIDERS": "ode_solvers"}


@functools.cache
def table() -> dict[str, Any]:
  """The stored table: `{"packages": {dist: package}, kind: {dist: [names]}}`."""
  text = importlib.resources.files(__package__).joinpath(
      DATA_FILE).read_text(encoding="utf-8")
  return json.loads(text)


def plugin_packages() -> dict[str, str]:
  """Monorepo plugin distribution -> the package it imports as."""
  return dict(table()["packages"])


def provided(kind: str) -> dict[str, str]:
  """Name -> the distribution that registers it, for one of `KINDS`."""
  return {name: dist for dist, names in table().get(kind, {}).items()
          for name in names}


def names_of(kind: str, dist: str) -> list[str]:
  """The names of one of `KINDS` that plugin `dist` registers, sorted."""
  return sorted(table().get(kind, {}).get(dist, ()))


def __getattr__(name: str):
  # `LAYER_PROVIDERS` etc. and `PLUGIN_PACKAGES` read the file on first use.
  if name in _BY_NAME:
    return provided(_BY_NAME[name])
  if name == "PLUGIN_PACKAGES":
    return plugin_packages()
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def source_checkout() -> "pathlib.Path | None":
  """The source checkout this `ntcore` is imported from, or None.

  An editable install (`pip install -e .`) imports the core from the
  checkout itself, whose root holds `pyproject.toml` and `plugins/`; an
  install from a wheel or an index imports it from `site-packages`.
  """
  root = pathlib.Path(__file__).resolve().parents[2]
  if (root / "pyproject.toml").is_file() and (root / "plugins").is_dir():
    return root
  return None


def install_line(dist: str) -> str:
  """The command that installs plugin `dist`, fitting how the core was installed.

  Editable from a source checkout: the plugin's folder in it,
  `pip install -e plugins/nt_conv`. From a wheel or an index (or for a
  plugin that is not in the monorepo): `pip install nt-conv`.
  """
  package = plugin_packages().get(dist)
  checkout = source_checkout()
  if package is not None and checkout is not None and (
      checkout / "plugins" / package).is_dir():
    return errors.INSTALL_HINT.format(package=package)
  return errors.INSTALL_FROM_INDEX.format(dist=dist)
