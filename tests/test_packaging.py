"""The distributions are publishable: names, metadata, and what a wheel holds.

* The core is distributed as `ntcore-jax` (`ntcore` on PyPI is an unrelated
  project); every plugin depends on it by that name with a lower bound.
* Every distribution ships the Apache-2.0 LICENSE, a README and `py.typed`,
  and its version is written only in its pyproject.toml.
* `python -m build` and `twine check --strict` pass for every distribution,
  and the core and nt-dense wheels, installed as wheels, list nt-dense's
  layers and give index install lines (slow).
"""

import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import sys
import tomllib
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

import ntcore
from ntcore.registry import providers

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
PROJECT_DIRS = [ROOT, *PLUGIN_DIRS, ROOT / "examples" / "third_party_plugin",
                ROOT / "examples" / "pooling_plugin"]
CORE_EXTRAS = {"dense", "conv", "attention", "montecarlo", "taylor", "ode",
               "dask", "sklearn"}


def project(path: pathlib.Path) -> dict:
  with (path / "pyproject.toml").open("rb") as f:
    return tomllib.load(f)["project"]


def core_requirement(path: pathlib.Path) -> Requirement:
  """The one requirement of `path`'s distribution on the core."""
  core = canonicalize_name(project(ROOT)["name"])
  found = [Requirement(r) for r in project(path)["dependencies"]
           if canonicalize_name(Requirement(r).name) == core]
  assert len(found) == 1, (path.name, project(path)["dependencies"])
  return found[0]


def test_core_distribution_name_is_ours_not_the_unrelated_ntcore():
  name = project(ROOT)["name"]
  assert name == providers.CORE_DISTRIBUTION
  assert canonicalize_name(name) != "ntcore"
  # PyPI also refuses names equal to an existing one once `-`, `_`, `.` are
  # removed (nt-core and nt_core are both "ntcore").
  assert canonicalize_name(name).replace("-", "") != "ntcore"


@pytest.mark.parametrize("path", PROJECT_DIRS[1:], ids=lambda p: p.name)
def test_every_plugin_depends_on_the_core_distribution_with_bounds(path):
  spec = core_requirement(path).specifier
  core_version = Version(project(ROOT)["version"])
  assert core_version in spec
  assert any(s.operator == ">=" for s in spec), spec
  assert Version(f"{core_version.major}.{core_version.minor + 1}") not in spec
  for extra, reqs in project(path).get("optional-dependencies", {}).items():
    names = {canonicalize_name(Requirement(r).name) for r in reqs}
    assert "ntcore" not in names, (path.name, extra)


def test_core_extras_pull_every_monorepo_plugin_by_name():
  extras = project(ROOT)["optional-dependencies"]
  assert CORE_EXTRAS | {"all", "test", "plot"} <= set(extras)
  plugins = {canonicalize_name(project(p)["name"]): p for p in PLUGIN_DIRS}
  pulled = {}
  for extra in CORE_EXTRAS:
    (req,) = [Requirement(r) for r in extras[extra]]
    assert canonicalize_name(req.name) in plugins, (extra, req)
    assert Version(project(plugins[canonicalize_name(req.name)])["version"]) in (
        req.specifier)
    pulled[canonicalize_name(req.name)] = extra
  assert set(pulled) == set(plugins)
  (everything,) = [Requirement(r) for r in extras["all"]]
  assert canonicalize_name(everything.name) == canonicalize_name(
      project(ROOT)["name"])
  assert everything.extras == CORE_EXTRAS


def test_jax_has_a_lower_bound_the_installed_jax_meets():
  reqs = {canonicalize_name(Requirement(r).name): Requirement(r)
          for r in project(ROOT)["dependencies"]}
  for name in ("jax", "jaxlib"):
    spec: SpecifierSet = reqs[name].specifier
    assert any(s.operator == ">=" for s in spec), (name, spec)
    assert Version(importlib.metadata.version(name)) in spec


@pytest.mark.parametrize("path", PROJECT_DIRS, ids=lambda p: p.name)
def test_every_distribution_ships_license_readme_and_py_typed(path):
  meta = project(path)
  assert meta["license"] == "Apache-2.0"
  assert meta["license-files"] == ["LICENSE"]
  license_text = (path / "LICENSE").read_text()
  assert "Apache License" in license_text and "Version 2.0" in license_text
  readme = (path / meta["readme"]).read_text()
  if path.parent != ROOT / "examples":  # not the example plugins
    assert re.search(rf'pip install "?{meta["name"]}\b', readme), path.name
  with (path / "pyproject.toml").open("rb") as f:
    setuptools = tomllib.load(f)["tool"]["setuptools"]
  (include,) = setuptools["packages"]["find"]["include"]
  package = include.rstrip("*")
  assert (path / package / "py.typed").is_file()
  assert setuptools["package-data"][package] == ["py.typed"]


@pytest.mark.parametrize("path", PROJECT_DIRS, ids=lambda p: p.name)
def test_version_is_written_only_in_pyproject(path):
  meta = project(path)
  installed = importlib.metadata.version(meta["name"])
  assert installed == meta["version"]
  assert "version" not in meta.get("dynamic", [])
  if path == ROOT:
    assert ntcore.__version__ == installed


def test_editable_core_installs_plugins_from_the_checkout():
  # The suite runs on an editable install of this checkout (scripts/setup.sh).
  assert providers.source_checkout() == ROOT
  assert providers.install_line("nt-conv") == "pip install -e plugins/nt_conv"
  # A plugin that is not in the monorepo is installed from the index.
  assert providers.install_line("nt-step") == "pip install nt-step"


# Building ---------------------------------------------------------------------


def run(*args, **kwargs) -> subprocess.CompletedProcess:
  result = subprocess.run(args, capture_output=True, text=True, check=False,
                          **kwargs)
  assert result.returncode == 0, result.stdout + result.stderr
  return result


def build_all(out: pathlib.Path) -> None:
  """Every distribution built as sdist and wheel into `out`.

  No build isolation: the test environment's setuptools (the test extra
  asks for the version `build-system.requires` names) builds them, offline.
  """
  for path in PROJECT_DIRS:
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
        str(path))


def wheel(dists: pathlib.Path, name: str) -> pathlib.Path:
  (found,) = dists.glob(f"{name.replace('-', '_')}-*.whl")
  return found


# One test, so that the builds (~15 s) happen once under pytest-xdist too.
@pytest.mark.slow
def test_every_distribution_builds_passes_twine_and_installs_as_a_wheel(
    tmp_path):
  dists = tmp_path / "dist"
  build_all(dists)
  names = [project(p)["name"] for p in PROJECT_DIRS]
  files = sorted(dists.iterdir())
  assert len(files) == 2 * len(names)
  run(sys.executable, "-m", "twine", "check", "--strict", *map(str, files))
  for path in PROJECT_DIRS:
    meta = project(path)
    with zipfile.ZipFile(wheel(dists, meta["name"])) as whl:
      members = whl.namelist()
      info = next(m for m in members if m.endswith(".dist-info/METADATA"))
      metadata = whl.read(info).decode()
    assert f"\nVersion: {meta['version']}\n" in metadata
    assert "\nLicense-Expression: Apache-2.0\n" in metadata
    assert any(m.endswith(".dist-info/licenses/LICENSE") for m in members)
    assert any(m.endswith("/py.typed") for m in members)
    assert not any(m.startswith(("tests/", "benchmarks/")) for m in members)
  check_installed_wheels(dists, tmp_path / "site")


def check_installed_wheels(dists: pathlib.Path, target: pathlib.Path) -> None:
  """The core and nt-dense wheels, installed (not editable) into a folder of
  their own, list nt-dense's layers and point to the index for the rest."""
  run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
      "--quiet", "--target", str(target),
      str(wheel(dists, "ntcore-jax")), str(wheel(dists, "nt-dense")))
  env = {**os.environ, "PYTHONPATH": str(target),
         "NTCORE_LOAD_PLUGINS": "nt-dense"}
  script = (
      "import json, ntcore, sys\n"
      "from ntcore import stax\n"
      "from ntcore.cli import main\n"
      "try:\n  stax.Conv\nexcept ntcore.LayerNotInstalledError as e:\n"
      "  message = str(e)\n"
      "print(json.dumps({'file': ntcore.__file__, 'message': message}))\n"
      "main(['list-layers'], standalone_mode=False)\n")
  result = run(sys.executable, "-c", script, env=env, cwd=target.parent)
  first, *table = result.stdout.splitlines()
  seen = json.loads(first)
  assert pathlib.Path(seen["file"]).is_relative_to(target)
  assert "pip install nt-conv" in seen["message"]
  assert "plugins/" not in seen["message"]
  rows = {line.split()[0]: line.split()[1] for line in table[1:]}
  assert rows["Dense"] == "nt-dense" and rows["Relu"] == "nt-dense"
