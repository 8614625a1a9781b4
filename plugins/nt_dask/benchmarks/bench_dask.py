"""Benchmarks of the Dask executor (pytest-benchmark) against the in-process one.

* **Speed-up.** A Myrtle-like CNN kernel (three Conv+Relu, AvgPool,
  GlobalAvgPool, Dense; NNGP and NTK, full pixel-pixel covariances) of
  `N = 48` images 8x8x3 in blocks of 8, `x2=None`: 21 blocks. In process
  (one device) against `executor="dask"` on a `LocalCluster` of 1 and of 2
  worker processes (one thread each).
* **Scheduling overhead per block.** A kernel whose blocks cost almost
  nothing (a 2-layer FC network on 4 features, 120 examples in blocks of 4:
  465 blocks): `(dask time - in-process time) / blocks` on 1 worker.

Every case runs once before it is timed, so workers have imported the
model and compiled its blocks (each worker keeps its kernel function, so
later runs compile nothing). Not collected by the default test run. Run

    pytest plugins/nt_dask/benchmarks/bench_dask.py
"""

import logging

import jax

jax.config.update("jax_enable_x64", False)

# pylint: disable=wrong-import-position
import distributed
import numpy as np
import pytest

import ntcore as nt
from ntcore import stax

import nt_dask

GET = ("nngp", "ntk")


def myrtle():
  conv = lambda: stax.Conv(64, (3, 3), padding="SAME", W_std=1.4, b_std=0.05)
  return stax.serial(conv(), stax.Relu(), conv(), stax.Relu(),
                     stax.AvgPool((2, 2), strides=(2, 2)), conv(),
                     stax.Relu(), stax.GlobalAvgPool(),
                     stax.Dense(10, W_std=1.4))[2]


def tiny():
  return stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))[2]


WORKLOADS = {
    "myrtle": (myrtle, (48, 8, 8, 3), 8),
    "tiny": (tiny, (120, 4), 4),
}


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def client(request):
  with distributed.LocalCluster(
      n_workers=request.param, threads_per_worker=1, processes=True,
      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
    with distributed.Client(cluster, set_as_default=False) as c:
      yield c


def _inputs(shape):
  return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _run(batched, x):
  return jax.block_until_ready(batched(x, None, GET))


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_in_process(benchmark, workload):
  make, shape, block = WORKLOADS[workload]
  batched = nt.batch(make(), block, device_count=0, progress=False)
  x = _inputs(shape)
  _run(batched, x)
  benchmark.extra_info["blocks"] = batched.last_run["total"]
  benchmark.pedantic(_run, (batched, x), rounds=3, iterations=1)


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_dask(benchmark, client, workload):
  make, shape, block = WORKLOADS[workload]
  if workload == "tiny" and len(client.scheduler_info()["workers"]) > 1:
    pytest.skip("the overhead is measured on one worker")
  batched = nt.batch(make(), block, progress=False,
                     executor=nt_dask.DaskExecutor(client=client))
  x = _inputs(shape)
  _run(batched, x)
  benchmark.extra_info["blocks"] = batched.last_run["total"]
  benchmark.pedantic(_run, (batched, x), rounds=3, iterations=1)
