"""`ntcore --version` does no work it does not need.

(`ntcore --help` lists the commands plugins add, so it loads the plugins,
and with them jax.)

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
