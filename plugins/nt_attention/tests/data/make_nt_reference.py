"""Writes nt_reference.npz: the kernels of `_cases.py` under NT 0.6.5.

Run with Neural Tangents installed (not by the tests):
  .bench/venv-nt/bin/python plugins/nt_attention/tests/data/make_nt_reference.py
"""

import pathlib
import sys
import warnings

import jax

jax.config.update("jax_enable_x64", True)
warnings.filterwarnings("ignore")
HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

import _cases  # noqa: E402

x = _cases.inputs()
out = {}
for name in _cases.cases(stax):
  nngp, ntk = _cases.run(stax, name, x)
  out[f"{name}/nngp"], out[f"{name}/ntk"] = np.asarray(nngp), np.asarray(ntk)
np.savez_compressed(HERE / "nt_reference.npz", **out)
print(f"wrote {len(out) // 2} cases")
