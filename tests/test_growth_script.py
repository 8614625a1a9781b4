"""`benchmarks/bench_growth.py` measures, tabulates and plots ntcore alone."""

import json
import math
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_growth.py"


@pytest.mark.slow  # two fresh processes compiling the FC kernel: ~20 s of CPU
def test_growth_script_records_times_memory_and_writes_the_figure(tmp_path):
  jsonl, md, svg = tmp_path / "g.jsonl", tmp_path / "g.md", tmp_path / "g.svg"
  done = subprocess.run(
      [sys.executable, str(SCRIPT), "--quick", "--modules", "ntcore", "-w", "fc",
       "--json-out", str(jsonl), "--md-out", str(md), "--figure", str(svg)],
      capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  recs = [json.loads(l) for l in jsonl.read_text().splitlines()]
  assert [(r["workload"], r["module"], r["size"]) for r in recs] == [
      ("fc", "ntcore", 500), ("fc", "ntcore", 1000)]
  for r in recs:
    assert r["status"] == "ok", r
    assert r["compile_first_s"] > 0 and r["steady_median_s"] > 0
    assert r["hwm_reset"] is True
    assert math.isfinite(r["mem_above_base_mb"]) and r["mem_above_base_mb"] > 0
  # Times are reported, never compared here (the machine may be shared);
  # the memory of a 4x larger kernel is: its output alone is 12 MB more.
  assert recs[1]["mem_above_base_mb"] > recs[0]["mem_above_base_mb"]
  text = md.read_text()
  assert "| fc | N=500 |" in text and "| fc | N=1000 |" in text
  assert "neural_tangents" not in done.stdout and "NT 0.6.5 first" not in text
  head = svg.read_text()[:2000]
  assert svg.stat().st_size > 1000 and "<svg" in head
