"""Benchmark: a 50-point hyper-parameter sweep of small fully-connected networks.

The pattern research code follows: for every point of a grid (`W_std`,
`b_std`, depth 1-3, Relu or Erf) build a new network with `stax.serial`,
compute the train-train and test-train NNGP with the network's `kernel_fn`
(called directly, no user `jit`) and the GP posterior mean with
`predict.gp_inference`. Inputs: 100 training and 50 test points of 16
features, float32. The whole sweep is timed end to end, compilation
included, since every point is a network never seen before.

Not collected by the default test run (files are named `bench_*.py`). Run

    pytest benchmarks/bench_sweep.py                   # pytest-benchmark
    python benchmarks/bench_sweep.py                   # median of 3 sweeps
    python benchmarks/bench_sweep.py --module neural_tangents   # same, NT

Each `python` run is one fresh process, so its first sweep pays every
compilation the library does; `--repeats` further sweeps in the same
process show the warm cost.
"""

import argparse
import importlib
import os
import sys

import jax

jax.config.update("jax_enable_x64", False)

# pylint: disable=wrong-import-position
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing  # pylint: disable=import-error

N_TRAIN, N_TEST, FEATURES, WIDTH = 100, 50, 16, 512


def grid(points: int = 50):
  """`points` settings `(W_std, b_std, depth, activation)`, all distinct."""
  out = []
  for i in range(points):
    w_std = 1.0 + 0.02 * i
    b_std = (0.0, 0.05, 0.1)[i % 3]
    depth = 1 + i % 3
    activation = ("Relu", "Erf")[(i // 3) % 2]
    out.append((w_std, b_std, depth, activation))
  return out


def data():
  rng = np.random.default_rng(0)
  x_train = rng.standard_normal((N_TRAIN, FEATURES)).astype(np.float32)
  x_test = rng.standard_normal((N_TEST, FEATURES)).astype(np.float32)
  y_train = np.sin(x_train[:, :1]).astype(np.float32)
  return x_train, y_train, x_test


def one_point(stax, predict, point, x_train, y_train, x_test):
  """Builds one network and returns its GP posterior mean on `x_test`."""
  w_std, b_std, depth, activation = point
  layers = []
  for _ in range(depth):
    layers += [stax.Dense(WIDTH, W_std=w_std, b_std=b_std),
               getattr(stax, activation)()]
  layers += [stax.Dense(1, W_std=w_std, b_std=b_std)]
  _, _, kernel_fn = stax.serial(*layers)
  k_train = kernel_fn(x_train, None, "nngp")
  k_test = kernel_fn(x_test, x_train, "nngp")
  predict_fn = predict.gp_inference(k_train, y_train, diag_reg=1e-3)
  return jax.block_until_ready(predict_fn("nngp", k_test))


def sweep(stax, predict, points: int = 50):
  """The whole sweep; returns the posterior means, one per point."""
  x_train, y_train, x_test = data()
  return [one_point(stax, predict, p, x_train, y_train, x_test)
          for p in grid(points)]


def test_sweep(benchmark):
  from ntcore import predict, stax  # pylint: disable=import-outside-toplevel
  means = benchmark.pedantic(sweep, args=(stax, predict), rounds=3,
                             iterations=1)
  assert len(means) == 50
  assert all(np.isfinite(m).all() for m in means)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--module", default="ntcore")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--points", type=int, default=50)
  args = parser.parse_args()
  nt = importlib.import_module(args.module)
  stax = importlib.import_module(args.module + ".stax")
  predict = importlib.import_module(args.module + ".predict")
  del nt
  _, summary = _timing.cold_and_warm(
      lambda: sweep(stax, predict, args.points), args.repeats)
  print(f"{args.module}: {args.points}-point sweep, {summary}")


if __name__ == "__main__":
  main()
