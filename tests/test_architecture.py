"""Rules of the architecture, checked rather than remembered.

* The core never imports a plugin (`nt_*`, `plugins`).
* `docs/plugin_hooks.md` documents exactly the hooks `pm.hook` has, with
  their signatures and firstresult-ness.
* The provider table, data in `ntcore/registry/providers.json`, agrees with
  what the installed monorepo plugins (`plugins/*`) register: it is exactly
  what `scripts/write_providers.py` writes. Third-party plugins
  (`examples/third_party_plugin`) are not in the core's table.
"""

import ast
import difflib
import importlib.metadata
import importlib.util
import inspect
import json
import pathlib
import re
import tomllib

import pytest

from ntcore import registry
from ntcore.registry import hookspecs, manager, providers

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = ROOT / "ntcore"
HOOK_DOCS = ROOT / "docs" / "plugin_hooks.md"
_PLUGIN_MODULE = re.compile(r"^(nt_\w+|plugins)(\.|$)")




def _load_script(name: str):
  spec = importlib.util.spec_from_file_location(
      name, ROOT / "scripts" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


write_providers = _load_script("write_providers")
monorepo_plugins = write_providers.monorepo_plugins


def plugin_imports(source: str) -> list[str]:
  """Modules named by `import`/`from` statements or `import_module("...")`
  calls in `source` that are plugins."""
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found += [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found.append(node.module)
    elif (isinstance(node, ast.Call) and node.args
          and isinstance(node.args[0], ast.Constant)
          and isinstance(node.args[0].value, str)
          and getattr(node.func, "attr", getattr(node.func, "id", None))
          in ("import_module", "__import__")):
      found.append(node.args[0].value)
  return [m for m in found if _PLUGIN_MODULE.match(m)]


def test_plugin_import_detector_catches_every_form():
  source = ("import nt_conv\n"
            "from plugins.nt_dense import plugin\n"
            "try:\n  from nt_ode.solvers import Dopri5\nexcept ImportError:\n  pass\n"
            "importlib.import_module('nt_montecarlo')\n"
            "import ntcore.registry, numpy\n"
            "from ntcore import stax\n")
  assert plugin_imports(source) == [
      "nt_conv", "plugins.nt_dense", "nt_ode.solvers", "nt_montecarlo"]


def test_core_never_imports_a_plugin():
  files = sorted(CORE.rglob("*.py"))
  assert CORE / "cli.py" in files and CORE / "registry" / "manager.py" in files
  offenders = {str(f.relative_to(ROOT)): plugin_imports(f.read_text())
               for f in files}
  assert {f: m for f, m in offenders.items() if m} == {}


# docs/plugin_hooks.md ---------------------------------------------------------


def documented_hooks() -> dict[str, tuple[tuple[str, ...], str]]:
  """`## name(args)` heading -> (argument names, text of its section)."""
  sections = re.split(r"^## ", HOOK_DOCS.read_text(), flags=re.M)[1:]
  hooks = {}
  for section in sections:
    heading, _, body = section.partition("\n")
    match = re.fullmatch(r"(\w+)\(([\w, ]*)\)", heading.strip())
    if match:
      args = tuple(a.strip() for a in match.group(2).split(",") if a.strip())
      hooks[match.group(1)] = (args, body)
  return hooks


def spec_hooks() -> dict[str, object]:
  pm = registry.new_manager()
  return {name: caller for name, caller in vars(pm.hook).items()
          if not name.startswith("_") and caller.spec is not None}


def test_every_hook_documented_with_its_exact_signature():
  documented = {name: args for name, (args, _) in documented_hooks().items()}
  actual = {name: tuple(caller.spec.argnames)
            for name, caller in spec_hooks().items()}
  assert "register_layers" in actual  # the hookspecs really were read
  assert documented == actual


def test_hook_docs_say_firstresult_as_the_spec_does():
  docs = documented_hooks()
  for name, caller in spec_hooks().items():
    firstresult = bool(caller.spec.opts.get("firstresult"))
    said = re.search(r"\*\*firstresult:\*\* (yes|no)", docs[name][1])
    assert said, f"docs/plugin_hooks.md: {name} does not say firstresult"
    assert said.group(1) == ("yes" if firstresult else "no"), name
    doc = inspect.getdoc(getattr(hookspecs, name))
    assert "firstresult" in doc.lower(), f"hookspec {name} docstring"
    if firstresult:
      assert "Stops at the first non-None result." in doc, name


def test_hook_docs_cover_selection_tracing_failures_and_clashes():
  text = HOOK_DOCS.read_text()
  for needle in (manager.LOAD_ENV, manager.TRACE_ENV, "PluginLoadWarning",
                 "LoadError", "LayerNameClashError", "check_pending"):
    assert needle in text, needle


# Provider tables vs installed plugins ----------------------------------------


@pytest.fixture(scope="module")
def installed():
  """A fresh registry of every installed plugin, loaded without errors."""
  eps = list(importlib.metadata.entry_points(group=manager.GROUP))
  return eps, write_providers.installed_registry()


def test_entry_point_name_is_distribution_name(installed):
  eps, _ = installed
  assert eps, "no ntcore plugin installed (pip install -e plugins/nt_dense)"
  for ep in eps:
    assert manager.normalize(ep.dist.name) == manager.normalize(ep.name)


def test_every_monorepo_plugin_is_in_the_package_table():
  plugins = monorepo_plugins()
  assert "nt-dense" in plugins
  assert providers.PLUGIN_PACKAGES == plugins
  for dist, folder in plugins.items():
    assert providers.install_line(dist) == f"pip install -e plugins/{folder}"


def test_provider_file_is_what_the_script_writes_from_installed_plugins(
    installed):
  eps, reg = installed
  plugins = monorepo_plugins()
  loaded = {ep.name for ep in eps} & set(plugins)
  assert "nt-dense" in loaded
  stored = providers.table()
  expected = write_providers.build(reg, plugins)
  # A monorepo plugin that is not installed here cannot be checked: its
  # stored entries stand (CI installs every one, scripts/setup.sh).
  for kind in providers.KINDS:
    for dist in sorted(set(plugins) - loaded):
      if dist in stored.get(kind, {}):
        expected[kind][dist] = stored[kind][dist]
    expected[kind] = dict(sorted(expected[kind].items()))
  have = write_providers.DATA.read_text(encoding="utf-8")
  want = write_providers.render(expected)
  diff = "".join(difflib.unified_diff(
      have.splitlines(True), want.splitlines(True), "stored", "registered"))
  assert have == want, (
      "ntcore/registry/providers.json is stale; run "
      f"`python scripts/write_providers.py`:\n{diff}")


def test_provider_tables_attribute_every_name_to_one_plugin():
  stored = providers.table()
  for kind in providers.KINDS:
    pairs = [(n, d) for d, names in stored[kind].items() for n in names]
    assert len({n for n, _ in pairs}) == len(pairs), kind
    assert providers.provided(kind) == dict(pairs)
  assert providers.LAYER_PROVIDERS["Conv"] == "nt-conv"
  assert providers.ESTIMATOR_PROVIDERS["linearize"] == "nt-taylor"
  assert providers.ODE_SOLVER_PROVIDERS["dopri5"] == "nt-ode"
  assert "dopri5" in providers.names_of("ode_solvers", "nt-ode")
  with pytest.raises(AttributeError, match="NO_SUCH_TABLE"):
    providers.NO_SUCH_TABLE  # pylint: disable=pointless-statement


def test_script_check_fails_on_a_stale_file_and_passes_on_its_own(
    installed, tmp_path, capsys):
  eps, _ = installed
  absent = set(monorepo_plugins()) - {ep.name for ep in eps}
  if absent:
    pytest.skip(f"the script needs every monorepo plugin; not installed: "
                f"{sorted(absent)}")
  data = tmp_path / providers.DATA_FILE
  assert write_providers.main([], data=data) == 0
  assert write_providers.main(["--check"], data=data) == 0
  assert data.read_text() == write_providers.DATA.read_text()
  fresh = json.loads(data.read_text())
  for change in ("drop", "add"):
    stale = json.loads(json.dumps(fresh))
    names = stale["layers"]["nt-dense"]
    if change == "drop":
      names.remove("Relu")
    else:
      names.append("Relu6")
    data.write_text(write_providers.render(stale))
    assert write_providers.main(["--check"], data=data) == 1, change
  assert "is stale: run python scripts/write_providers.py" in (
      capsys.readouterr().err)


def test_provider_data_ships_as_package_data():
  with (ROOT / "pyproject.toml").open("rb") as f:
    package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
  assert providers.DATA_FILE in package_data["ntcore.registry"]
  assert write_providers.DATA.is_file()


# tests/conftest.py ------------------------------------------------------------


def test_conftest_sets_x64_strict_rank_promotion_and_two_cpu_devices():
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  assert jnp.zeros(()).dtype == jnp.float64
  with pytest.raises(ValueError, match="jax_numpy_rank_promotion=.raise."):
    jnp.ones(2) + jnp.ones((2, 2))  # pylint: disable=expression-not-assigned
  assert len(jax.devices("cpu")) == 2
