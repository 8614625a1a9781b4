"""`ntcore --version` and `ntcore --help` do no work they do not need.

`--help` lists the commands plugins add, so it loads the plugins' entry
points, but not their layers: those (and jax) are imported by the hooks that
register specs, which `--help` does not call.

Each runs in a fresh interpreter (a subprocess), where nothing has imported
jax or a plugin yet, and reports which modules the command pulled in.
"""

import importlib.metadata
import json
import subprocess
import sys

from ntcore.registry import providers

_PROBE = """
import json, sys
from click.testing import CliRunner
from ntcore.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
print(json.dumps({
    "exit_code": result.exit_code, "output": result.output,
    "jax": "jax" in sys.modules,
    "plugins": sorted(m for m in sys.modules if m.startswith("nt_")),
}))
"""


def probe(*args: str) -> dict:
  done = subprocess.run([sys.executable, "-c", _PROBE, *args],
                        capture_output=True, text=True, check=True)
  return json.loads(done.stdout.splitlines()[-1])


def test_version_is_the_core_distributions_and_loads_no_plugin():
  seen = probe("--version")
  assert seen["exit_code"] == 0
  version = importlib.metadata.version(providers.CORE_DISTRIBUTION)
  assert seen["output"] == f"ntcore, version {version}\n"
  assert seen["plugins"] == []


def test_version_imports_no_jax():
  """`import ntcore` is lazy: jax is imported on first use of a layer."""
  seen = probe("--version")
  assert seen["exit_code"] == 0
  assert not seen["jax"]


def test_import_ntcore_is_lazy_but_complete():
  code = ("import sys, ntcore as nt; assert 'jax' not in sys.modules; "
          "from ntcore import stax; nt.Kernel; nt.batch; nt.make_layer; "
          "print('jax' in sys.modules)")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, check=True)
  assert done.stdout.strip() == "True"


def test_help_lists_every_command_without_importing_jax():
  seen = probe("--help")
  assert seen["exit_code"] == 0, seen["output"]
  for command in ("demo", "kernel", "kernel-info", "list-layers", "plugins"):
    assert f"  {command} " in seen["output"]
  assert not seen["jax"]


def test_every_installed_plugin_loads_without_jax():
  """The rule `ntcore --help` relies on: a plugin's entry-point module (and
  its package) import nothing heavy; the hooks import the layers."""
  code = ("import importlib.metadata, json, sys; "
          "eps = importlib.metadata.entry_points(group='ntcore'); "
          "[ep.load() for ep in eps]; "
          "print(json.dumps([sorted(ep.name for ep in eps), "
          "'jax' in sys.modules]))")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, check=True)
  names, jax_loaded = json.loads(done.stdout)
  assert "nt-dense" in names and "nt-conv" in names
  assert not jax_loaded


def test_lazy_plugin_exports_resolve_on_first_use():
  code = """
import sys, nt_conv
assert "jax" not in sys.modules
assert "Conv" in dir(nt_conv) and "Conv" in nt_conv.__all__
conv = nt_conv.Conv
assert "jax" in sys.modules
from nt_conv.conv import Conv
assert conv is Conv
try:
  nt_conv.Nope
except AttributeError as e:
  print(e)
"""
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, check=True)
  assert done.stdout.strip() == "module 'nt_conv' has no attribute 'Nope'"
