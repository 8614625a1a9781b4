"""Test setup for nt-dask: float64, strict rank promotion, 2 CPU devices (so
the in-process reference runs the sharded path), and a real
`distributed.LocalCluster` of 2 worker processes, one per test module."""

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# pylint: disable=wrong-import-position
import logging

import distributed
import pytest


@pytest.fixture(scope="module")
def client():
  """A client of a fresh 2-process LocalCluster on localhost (random
  ports), the default client while the module's tests run."""
  with distributed.LocalCluster(
      n_workers=2, threads_per_worker=1, processes=True,
      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
    with distributed.Client(cluster) as c:
      yield c
