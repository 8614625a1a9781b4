"""Writes `nt_parameters.npz`: NT 0.6.5's `init_fn` parameters for two
small networks (float64, `PRNGKey(3)`) and a 3-sample Monte Carlo NNGP and
NTK (`PRNGKey(5)`), the reference of `tests/test_nt_parameters.py`. Run under NT 0.6.5's environment (jax 0.4.23):

    .bench/venv-nt/bin/python tests/data/make_nt_parameters.py neural_tangents

With `ntcore` instead it writes what ntcore draws, for comparison.
"""

import importlib
import os
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)


def networks(stax):
  """`name -> (layer, input_shape)`: the networks of the reference."""
  return {
      "mlp": (stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Relu(),
                          stax.Dense(3)), (2, 5)),
      "cnn": (stax.serial(stax.Conv(4, (3, 3), padding="SAME"), stax.Relu(),
                          stax.AvgPool((2, 2)), stax.Flatten(),
                          stax.Dense(2)), (2, 6, 6, 3)),
  }


def parameters(stax) -> dict:
  out = {}
  for name, (net, shape) in networks(stax).items():
    _, params = net[0](jax.random.PRNGKey(3), shape)
    for i, leaf in enumerate(jax.tree_util.tree_leaves(params)):
      out[f"{name}_{i}"] = np.asarray(leaf)
  return out


def monte_carlo(module) -> dict:
  """`monte_carlo_kernel_fn` of a Dense-Relu-Dense network, 3 samples."""
  stax = module.stax
  init_fn, apply_fn, _ = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1),
                                     stax.Relu(), stax.Dense(2))
  x = np.random.default_rng(0).normal(size=(3, 4))
  mc = module.monte_carlo_kernel_fn(init_fn, apply_fn, jax.random.PRNGKey(5),
                                    n_samples=3)
  nngp, ntk = mc(x, None, ("nngp", "ntk"))
  return {"mc_nngp": np.asarray(nngp), "mc_ntk": np.asarray(ntk)}


if __name__ == "__main__":
  module = importlib.import_module(sys.argv[1] if len(sys.argv) > 1
                                   else "neural_tangents")
  here = os.path.dirname(os.path.abspath(__file__))
  np.savez(os.path.join(here, "nt_parameters.npz"), **parameters(module.stax),
           **monte_carlo(module))
