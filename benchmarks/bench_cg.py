"""Benchmarks of `solver="cg"` (pytest-benchmark): dense vs PCG, and PCG on disk.

Workload: kernel regression with the NTK of a ReLU network (Dense(512)-Relu
x 2 - Dense, W_std=1.5, b_std=0.05) on `N` Gaussian inputs of dimension 16,
10 targets (`sin` of the inputs), `diag_reg=1e-3` (relative), 200 test
points, float64.

* **In memory, N = 20,000.** `gp_inference(k, y, 1e-3)("ntk", k_td)`:
  Cholesky (`solver=None`, NT's way; above N = 10,000 NumPy's Cholesky on
  one thread, as threaded OpenBLAS crashed at 16,000-20,000 here) against
  PCG (`solver="cg"`): time,
  the memory the solve adds to the process beyond the kernel itself, and
  the agreement of the means.
* **On disk.** The kernel is written by `ntcore.batch(..., store=dir)` and
  solved by `gp_inference(KernelOperator.from_store(dir, "ntk"), ...)`,
  block by block, at growing `N`: time, iterations, added memory.

Peak memory is the process's high-water mark (`VmHWM` in
`/proc/self/status`, reset through `clear_refs` once the kernel exists), so
each case runs in a subprocess of its own. Not collected by the default test
run (files are named `bench_*.py`). Run

    pytest benchmarks/bench_cg.py -k small      # timings, N = 2,000
    python benchmarks/bench_cg.py               # the tables (minutes)
    python benchmarks/bench_cg.py 20000 --disk 5000 10000 20000
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)

# pylint: disable=wrong-import-position
import numpy as np
import pytest
import scipy.linalg

import ntcore as nt
from ntcore import predict, stax

DIM, TARGETS, TEST, DIAG_REG, BLOCK = 16, 10, 200, 1e-3, 1000


def kernel_fn():
  return stax.serial(
      stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(),
      stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(),
      stax.Dense(1, W_std=1.5, b_std=0.05))[2]


def data(n: int):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((n, DIM))
  x_test = rng.standard_normal((TEST, DIM))
  y = np.sin(x[:, :TARGETS])
  return x, x_test, y


def train_kernel(x, store=None):
  """The training kernel; with `store`, only written there (None returned:
  at N = 40,000 the kernel alone is 12.8 GB)."""
  batched = nt.batch(kernel_fn(), BLOCK, store=store, progress=False,
                     store_on_device=False, assemble=store is None)
  return batched(x, None, "ntk")


def _memory(key: str) -> float:
  with open("/proc/self/status", encoding="ascii") as f:
    line = next(l for l in f if l.startswith(key + ":"))
  return int(line.split()[1]) / 1024


def _reset_peak() -> float:
  with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
    f.write("5")
  return _memory("VmRSS")


def run_case(case: str, n: int, store: str, out: str) -> dict:
  """One measurement, in this process: `case` is dense, cg or disk."""
  x, x_test, y = data(n)
  k_td = np.asarray(kernel_fn()(x_test, x, "ntk"))
  if case == "disk":
    k = predict.KernelOperator.from_store(store, "ntk")
    solver = None  # an operator: CG
  else:
    k = np.asarray(train_kernel(x))
    solver = "cg" if case == "cg" else None
  if case == "scipy":  # the dense reference at sizes threaded OpenBLAS fails
    k = np.array(k)  # writable, for the in-place factorization
    before = _reset_peak()
    start = time.perf_counter()
    reg = DIAG_REG * np.trace(k) / n
    k[np.diag_indices(n)] += reg
    low = np.linalg.cholesky(k)
    del k
    half = scipy.linalg.solve_triangular(low, y, lower=True)
    mean = k_td @ scipy.linalg.solve_triangular(low.T, half, lower=False)
    seconds = time.perf_counter() - start
    np.save(out, mean)
    return dict(case=case, n=n, seconds=seconds,
                added_mb=_memory("VmHWM") - before, rss_mb=before,
                iterations=None, rank=None, residual=None)
  # Warm BLAS/LAPACK and the solver's code paths on a small problem.
  a = np.random.default_rng(1).standard_normal((300, 300))
  predict.gp_inference(a @ a.T, y[:300], 0.1, solver=solver or "dense")(
      "ntk", a[:5])
  before = _reset_peak()
  start = time.perf_counter()
  fn = predict.gp_inference(k, y, DIAG_REG, solver=solver)
  mean = np.asarray(fn("ntk", k_td))
  seconds = time.perf_counter() - start
  np.save(out, mean)
  record = fn.cg_records[0] if fn.cg_records else None
  return dict(case=case, n=n, seconds=seconds,
              added_mb=_memory("VmHWM") - before, rss_mb=before,
              iterations=record and record.iterations,
              rank=record and record.rank,
              residual=record and float(np.max(record.residual)))


def measure(case: str, n: int, store: str = "") -> tuple[dict, np.ndarray]:
  env = dict(os.environ)
  if case == "scipy":
    # OpenBLAS 0.3.31's threaded Cholesky (potrf) crashed (SIGSEGV) at
    # N = 16,000-20,000 on this machine, in NumPy, SciPy and jaxlib alike;
    # single-threaded it runs.
    env["OPENBLAS_NUM_THREADS"] = "1"
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "mean.npy")
    proc = subprocess.run(
        [sys.executable, __file__, "--case", case, str(n), "--store", store,
         "--out", out], check=True, capture_output=True, text=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def _row(r: dict, agree="") -> str:
  it = "" if r["iterations"] is None else f"{r['iterations']:5d} {r['rank']:5d}"
  return (f"{r['case']:6s} {r['n']:7d} {r['seconds']:9.1f} "
          f"{r['added_mb']:9.0f} {r['rss_mb']:9.0f} {it:>11s} {agree}")


def tables(n_memory: int, n_disk: list[int]) -> None:
  print("case         N   time/s  added/MB   rss0/MB  iter  rank  "
        "max rel. diff", flush=True)
  if n_memory:  # 0: only the on-disk cases
    # Above 10,000 the dense reference is NumPy's Cholesky on one thread
    # (see `measure`).
    dense, m_dense = measure("dense" if n_memory <= 10000 else "scipy",
                             n_memory)
    print(_row(dense), flush=True)
    cg, m_cg = measure("cg", n_memory)
    diff = np.max(np.abs(m_cg - m_dense)) / np.max(np.abs(m_dense))
    print(_row(cg, f"{diff:.1e}"), flush=True)
  for n in n_disk:
    path = tempfile.mkdtemp(prefix="bench_cg_")
    try:
      start = time.perf_counter()
      train_kernel(data(n)[0], store=os.path.join(path, "k"))
      made = time.perf_counter() - start
      disk, _ = measure("disk", n, os.path.join(path, "k"))
      size = sum(e.stat().st_size for e in os.scandir(os.path.join(path, "k")))
      print(_row(disk, f"(store written in {made:.0f} s, "
                       f"{size / 2**30:.2f} GiB on disk)"), flush=True)
    finally:
      shutil.rmtree(path, ignore_errors=True)


# --- pytest-benchmark: a small size, so that it runs in seconds -------------
SMALL = 2000


@pytest.fixture(scope="module")
def small():
  x, x_test, y = data(SMALL)
  return (np.asarray(train_kernel(x)), np.asarray(kernel_fn()(x_test, x,
                                                              "ntk")), y)


@pytest.mark.parametrize("solver", [None, "cg"])
def test_small(benchmark, small, solver):
  k, k_td, y = small
  mean = benchmark.pedantic(
      lambda: np.asarray(predict.gp_inference(k, y, DIAG_REG, solver=solver)(
          "ntk", k_td)), rounds=3, iterations=1)
  dense = predict.gp_inference(k, y, DIAG_REG)("ntk", k_td)
  assert np.max(np.abs(mean - dense)) <= 1e-6 * np.max(np.abs(dense))


if __name__ == "__main__":
  parser = argparse.ArgumentParser()
  parser.add_argument("n", type=int, nargs="?", default=20000,
                      help="in-memory size (dense vs PCG); 0 skips it")
  parser.add_argument("--disk", type=int, nargs="*",
                      default=[5000, 10000, 20000])
  parser.add_argument("--case")
  parser.add_argument("--store", default="")
  parser.add_argument("--out")
  args = parser.parse_args()
  if args.case:
    print(json.dumps(run_case(args.case, args.n, args.store, args.out)))
  else:
    tables(args.n, args.disk)
