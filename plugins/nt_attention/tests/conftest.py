"""Test setup for nt-attention: float64, strict rank promotion, 2 CPUs."""

import pathlib
import sys

import jax

# Test modules share helpers in _nets.py; with --import-mode=importlib the
# test folder is not on sys.path by itself.
sys.path.insert(0, str(pathlib.Path(__file__).parent))

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
