"""Benchmarks of `ntcore.batch` (pytest-benchmark): symmetric saving, memory.

* **Symmetric saving.** `batch(kernel_fn, b)(x, None)` computes the
  `T (T + 1) / 2` blocks on and above the diagonal and mirrors them, where
  `batch(kernel_fn, b)(x, x)` computes all `T^2`: about 2x less work for
  large `T`. Workload: a Myrtle-like CNN kernel (Conv, Relu, AvgPool,
  GlobalAvgPool; full pixel-pixel covariances), `N = 64` images of 8x8x3,
  blocks of 8 (`T = 8`: 36 vs 64 blocks), one device.
* **Memory bound.** XLA's own account of the temporary memory of one
  compiled call (`compiled.memory_analysis().temp_size_in_bytes`): the
  unbatched `kernel_fn(x, None)` grows like `N^2` (every layer holds an
  `(N, N, h, h, w, w)` covariance), one block of `b x b` examples stays the
  same whatever `N` is. Only the `(N, N)` output grows with `N`.

Not collected by the default test run (files are named `bench_*.py`). Run

    pytest benchmarks/bench_batch.py            # the timings
    python benchmarks/bench_batch.py            # the table of both

Every timed call was run once before (compiled), and its result is waited
for with `jax.block_until_ready`.
"""

import time

import jax

jax.config.update("jax_enable_x64", False)

# pylint: disable=wrong-import-position
import numpy as np
import pytest

import ntcore as nt
from ntcore import stax

N, IMAGE, BLOCK = 64, (8, 8, 3), 8


def _model():
  return stax.serial(
      stax.Conv(64, (3, 3), padding="SAME", W_std=1.4, b_std=0.05),
      stax.Relu(),
      stax.Conv(64, (3, 3), padding="SAME", W_std=1.4, b_std=0.05),
      stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)),
      stax.Conv(64, (3, 3), padding="SAME", W_std=1.4, b_std=0.05),
      stax.Relu(), stax.GlobalAvgPool(), stax.Dense(10, W_std=1.4))[2]


def _inputs(n=N):
  return np.random.default_rng(0).standard_normal((n,) + IMAGE).astype(
      np.float32)


def _run(fn, *args):
  return jax.block_until_ready(fn(*args, ("nngp", "ntk")))


@pytest.fixture(scope="module")
def kernel_fn():
  return _model()


@pytest.mark.parametrize("symmetric", [True, False], ids=["x2=None", "x2=x"])
def test_symmetric_saving(benchmark, kernel_fn, symmetric):
  x = _inputs()
  batched = nt.batch(kernel_fn, BLOCK, device_count=0, progress=False)
  second = None if symmetric else x
  _run(batched, x, second)  # compile
  benchmark.extra_info["blocks"] = batched.last_run["computed"]
  benchmark.pedantic(_run, args=(batched, x, second), rounds=3, iterations=1)


def _temp_bytes(kernel_fn, n):
  x = _inputs(n)
  compiled = jax.jit(lambda a: kernel_fn(a, None, ("nngp", "ntk"))).lower(
      x).compile()
  return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("n", [16, 32, 64])
def test_memory_of_one_block_does_not_grow_with_n(kernel_fn, n):
  whole = _temp_bytes(kernel_fn, n)
  block = _temp_bytes(kernel_fn, BLOCK)
  assert block < whole
  if n >= 2 * BLOCK:
    # (n / b)^2 times the pairs; allow for per-example terms (cov1).
    assert whole > 0.5 * (n / BLOCK) ** 2 * block


def main():
  kernel_fn = _model()
  x = _inputs()
  rows = []
  for symmetric in (True, False):
    batched = nt.batch(kernel_fn, BLOCK, device_count=0, progress=False)
    second = None if symmetric else x
    _run(batched, x, second)
    times = []
    for _ in range(3):
      start = time.perf_counter()
      _run(batched, x, second)
      times.append(time.perf_counter() - start)
    rows.append((symmetric, batched.last_run["computed"], min(times)))
  unbatched = jax.jit(lambda a: kernel_fn(a, None, ("nngp", "ntk")))
  _run(lambda a, get: unbatched(a), x)
  start = time.perf_counter()
  _run(lambda a, get: unbatched(a), x)
  whole_s = time.perf_counter() - start
  print(f"N={N} images {IMAGE}, blocks of {BLOCK}, float32, "
        f"{jax.devices()[0].platform}")
  for symmetric, blocks, seconds in rows:
    print(f"  x2={'None' if symmetric else 'x   '}: {blocks:3d} blocks "
          f"{seconds:7.3f} s")
  print(f"  unbatched x2=None: {whole_s:7.3f} s")
  print(f"  saving x2=None vs x2=x: {rows[1][2] / rows[0][2]:.2f}x time, "
        f"{rows[1][1] / rows[0][1]:.2f}x blocks")
  block = _temp_bytes(kernel_fn, BLOCK)
  print(f"temporary memory of one compiled call (XLA memory_analysis):")
  print(f"  one {BLOCK}x{BLOCK} block: {block / 2**20:8.2f} MiB (any N)")
  for n in (16, 32, 64, 128):
    print(f"  unbatched N={n:4d}: {_temp_bytes(kernel_fn, n) / 2**20:8.2f} MiB"
          f"   output {(n * n * 2 * 4) / 2**20:6.3f} MiB")


if __name__ == "__main__":
  main()
