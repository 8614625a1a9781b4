"""Benchmark: empirical NTKs inside a training loop.

A natural-gradient-style loop as research code writes it: a small MLP
(Dense(128)-Relu-Dense(128)-Relu-Dense(10)) on 32 examples of 32 features;
each of 20 steps computes the empirical NTK `Theta(x, x)` of the current
parameters with `nt.empirical_ntk_fn` (called directly, no user `jit`),
solves `(Theta + eps I) v = residual` for a function-space step, and
updates the parameters by the VJP of that step. The whole loop is timed end
to end, compilation included (a fresh process pays it once).

Not collected by the default test run (files are named `bench_*.py`). Run

    pytest benchmarks/bench_training_loop.py
    python benchmarks/bench_training_loop.py                  # ntcore
    python benchmarks/bench_training_loop.py --module neural_tangents
"""

import argparse
import importlib
import os
import sys

import jax

jax.config.update("jax_enable_x64", False)

# pylint: disable=wrong-import-position
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing  # pylint: disable=import-error

N, FEATURES, OUTPUTS, STEPS = 32, 32, 10, 20


def training_loop(nt, stax, steps: int = STEPS):
  """Runs the loop; returns the training loss after each step."""
  init_fn, apply_fn, _ = stax.serial(
      stax.Dense(128), stax.Relu(), stax.Dense(128), stax.Relu(),
      stax.Dense(OUTPUTS))
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((N, FEATURES)).astype(np.float32))
  y = jnp.asarray(np.tanh(rng.standard_normal((N, OUTPUTS))).astype(
      np.float32))
  _, params = init_fn(jax.random.PRNGKey(0), x.shape)
  ntk_fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)
  losses = []
  for _ in range(steps):
    theta = ntk_fn(x, None, params)  # (N, N, OUTPUTS, OUTPUTS)
    out, vjp = jax.vjp(lambda p: apply_fn(p, x), params)
    residual = (out - y).reshape(-1)
    matrix = theta.transpose(0, 2, 1, 3).reshape(N * OUTPUTS, N * OUTPUTS)
    step = jnp.linalg.solve(matrix + 1e-2 * jnp.eye(N * OUTPUTS), residual)
    (grad,) = vjp(step.reshape(N, OUTPUTS))
    params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grad)
    losses.append(float(jnp.mean((apply_fn(params, x) - y) ** 2)))
  return losses


def test_training_loop(benchmark):
  import ntcore as nt  # pylint: disable=import-outside-toplevel
  from ntcore import stax  # pylint: disable=import-outside-toplevel
  losses = benchmark.pedantic(training_loop, args=(nt, stax), rounds=3,
                              iterations=1)
  assert len(losses) == STEPS
  assert losses[-1] < losses[0]  # the loop does train


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--module", default="ntcore")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  nt = importlib.import_module(args.module)
  stax = importlib.import_module(args.module + ".stax")
  losses, summary = _timing.cold_and_warm(lambda: training_loop(nt, stax),
                                         args.repeats)
  print(f"{args.module}: {STEPS}-step loop, {summary}  loss {losses[0]:.4f}"
        f" -> {losses[-1]:.4f}")


if __name__ == "__main__":
  main()
