"""`benchmarks/gpu.py` runs unchanged on CPU at its tiny size."""

import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.mark.slow  # a fresh process compiling a CNN kernel: ~15 s of CPU
def test_gpu_script_prints_a_table_of_positive_timings():
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, str(SCRIPT), "--tiny"], env=env,
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  lines = [l for l in done.stdout.splitlines() if l.startswith("| ")]
  assert lines[0] == "| workload | size | value | unit |"
  rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines[1:]]
  names = [r[0] for r in rows]
  assert names[0] == "cnn2-ntk" and rows[0][3].startswith("ms/entry")
  for impl in ("jacobian_contraction", "ntk_vector_products",
               "structured_derivatives", "auto"):
    assert f"entk-cnn-{impl}" in names and f"entk-mlp-{impl}" in names
  for row in rows:
    assert len(row) == 4 and float(row[2]) > 0, row
