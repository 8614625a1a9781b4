"""Neural Tangents 0.6.5's own numbers (../shared/conformance), replayed.

The checker runs in a subprocess (it enables x64 itself). Every case must
pass: none may fail, error or be missing.
"""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECKER = ROOT.parent / "shared" / "conformance" / "check_conformance.py"

@pytest.fixture(scope="module")
def results(tmp_path_factory):
  if not CHECKER.exists():
    pytest.fail(f"conformance checker not found at {CHECKER}; the shared/ "
                f"folder must sit beside the repository.")
  out = tmp_path_factory.mktemp("conformance") / "results.json"
  proc = subprocess.run([sys.executable, str(CHECKER), "--quiet", "--json",
                         str(out)], cwd=ROOT, capture_output=True, text=True,
                        timeout=1200)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return json.loads(out.read_text())["results"]


def test_no_case_fails_or_errors(results):
  bad = [f"{r['status']} {r['name']}: {r['detail']}" for r in results
         if r["status"] in ("FAIL", "ERROR")]
  assert not bad, "\n".join(bad)


def test_no_case_is_missing(results):
  missing = [r["name"] for r in results if r["status"] == "MISSING"]
  assert not missing, f"cases whose API is missing: {missing}"


def test_built_families_pass(results):
  passed = {r["name"] for r in results if r["status"] == "pass"}
  for name in ("dense_ntk_bias", "mlp_standard_relu", "nl_gelu_x1x1",
               "nl_numerical_tanh_df", "fanout_fanin_prod", "shape_mlp",
               "empirical_ntk_trace_none_impl1", "taylor_expand_deg3",
               "gp_inference_ntk_cov", "gd_ensemble_t_none",
               "gd_ode_mse_matches_closed_form", "attn_pos_sum_val",
               "aggregate_sparse", "batch_fc_x1x1_bs3", "mask_conv_gap"):
    assert name in passed, f"{name} did not pass"
