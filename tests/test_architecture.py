"""Rules of the architecture, checked rather than remembered.

* The core never imports a plugin (`nt_*`, `plugins`).
* `docs/plugin_hooks.md` documents exactly the hooks `pm.hook` has, with
  their signatures and firstresult-ness.
* The string-only provider tables in `ntcore/registry/providers.py` agree
  with what the installed monorepo plugins (`plugins/*`) register. Third-party
  plugins (`examples/third_party_plugin`) are not in the core's table.
"""

import ast
import importlib.metadata
import inspect
import pathlib
import re
import tomllib
import warnings

import pytest

from ntcore import registry
from ntcore.registry import hookspecs, manager, providers

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = ROOT / "ntcore"
HOOK_DOCS = ROOT / "docs" / "plugin_hooks.md"
_PLUGIN_MODULE = re.compile(r"^(nt_\w+|plugins)(\.|$)")


def monorepo_plugins() -> dict[str, str]:
  """Distribution name -> folder name of every `plugins/*/pyproject.toml`."""
  found = {}
  for toml in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
    with toml.open("rb") as f:
      found[tomllib.load(f)["project"]["name"]] = toml.parent.name
  return found


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
  pm = registry.new_manager()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", registry.PluginLoadWarning)
    load_errors = registry.load_entry_points(pm, eps, only={
        manager.normalize(ep.name) for ep in eps})
    reg = registry.Registry(pm, load_errors)
    hook_errors = reg.layers.errors + reg.estimators.errors
  assert not load_errors + hook_errors, (
      "installed plugins failed to load: " + "; ".join(
          f"{e.plugin}: {e.error}" for e in load_errors + hook_errors))
  return eps, reg


def test_entry_point_name_is_distribution_name(installed):
  eps, _ = installed
  assert eps, "no ntcore plugin installed (pip install -e plugins/nt_dense)"
  for ep in eps:
    assert manager.normalize(ep.dist.name) == manager.normalize(ep.name)


def test_every_monorepo_plugin_is_in_the_package_table():
  plugins = monorepo_plugins()
  assert "nt-dense" in plugins
  for dist, folder in plugins.items():
    assert providers.PLUGIN_PACKAGES.get(dist) == folder, dist
    assert providers.install_line(dist) == f"pip install -e plugins/{folder}"


@pytest.mark.parametrize("kind, table", [
    ("layers", providers.LAYER_PROVIDERS),
    ("estimators", providers.ESTIMATOR_PROVIDERS),
])
def test_provider_table_matches_installed_plugins(installed, kind, table):
  eps, reg = installed
  plugins = {ep.name for ep in eps} & set(monorepo_plugins())
  assert "nt-dense" in plugins
  specs = [s for s in getattr(reg, kind).specs() if s.plugin in plugins]
  # Every registered name is in the table, under the plugin registering it.
  wrong = {f"{s.plugin}:{s.name}": table.get(s.name) for s in specs
           if table.get(s.name) != s.plugin}
  assert wrong == {}, ("names missing from (or misattributed in) "
                       f"ntcore/registry/providers.py: {wrong}")
  # Every name the table gives an installed plugin is registered by it;
  # only plugins that are not installed are skipped.
  registered = {(s.plugin, s.name) for s in specs}
  stale = sorted(f"{dist}:{name}" for name, dist in table.items()
                 if dist in plugins and (dist, name) not in registered)
  assert stale == [], ("names in ntcore/registry/providers.py that the "
                       f"installed plugin does not register: {stale}")


# tests/conftest.py ------------------------------------------------------------


def test_conftest_sets_x64_strict_rank_promotion_and_two_cpu_devices():
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  assert jnp.zeros(()).dtype == jnp.float64
  with pytest.raises(ValueError, match="jax_numpy_rank_promotion=.raise."):
    jnp.ones(2) + jnp.ones((2, 2))  # pylint: disable=expression-not-assigned
  assert len(jax.devices("cpu")) == 2
