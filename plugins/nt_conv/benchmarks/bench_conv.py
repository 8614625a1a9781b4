"""Kernel benchmarks of convolutional networks (pytest-benchmark).

The workloads of `../shared/bench/bench.py` that exercise nt-conv, built
from `ntcore.models`, on the same inputs (`randn(...).astype(float32)`,
seed 0) and in float32, so the numbers line up with that harness's
`steady_median_s`:

* `b_conv_only`: `ConvOnly(depth=8, W_std=1.5, b_std=0.05, width=128)`,
  no pooling (diagonal spatial kernel), 128 images of 16x16x3;
* `c_myrtle`: `Myrtle(depth=5, width=64)` with `AvgPool` and
  `GlobalAvgPool` (full pixel-pixel covariance), 32 images of 8x8x3;
* `d_wrn`: `WideResnet(block_size=1, k=1, num_classes=10)` with
  `GlobalAvgPool`, 16 images of 8x8x3 (bench.py's readout has `b_std=0.`
  where Listing 1's has no bias: the same kernel).

Not collected by the default test run (files must match `test_*.py`). Run

    pytest plugins/nt_conv/benchmarks/bench_conv.py

Each case jit-compiles `kernel_fn(x, None, ("nngp", "ntk"))` and runs it
once before timing; the timed call ends in `jax.block_until_ready`, so the
work is timed rather than JAX's asynchronous dispatch.
"""

import jax
import numpy as np
import pytest

from ntcore import models

WORKLOADS = {
    "b_conv_only": (lambda: models.ConvOnly(depth=8, W_std=1.5, b_std=0.05,
                                            width=128), (128, 16, 16, 3)),
    "c_myrtle": (lambda: models.Myrtle(depth=5, width=64), (32, 8, 8, 3)),
    "d_wrn": (lambda: models.WideResnet(block_size=1, k=1, num_classes=10),
              (16, 8, 8, 3)),
}


@pytest.fixture(autouse=True)
def float32():
  """bench.py runs with x64 off; restore the caller's setting afterwards."""
  previous = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", False)
  try:
    yield
  finally:
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_kernel_fn(benchmark, name):
  build, shape = WORKLOADS[name]
  _, _, kernel_fn = build()
  kf = jax.jit(kernel_fn, static_argnames="get")
  x = jax.numpy.asarray(np.random.RandomState(0).randn(*shape)
                        .astype(np.float32))

  def call():
    return jax.block_until_ready(kf(x, None, ("nngp", "ntk")))

  out = call()  # trace and compile outside the timed calls
  assert all(np.all(np.isfinite(m)) for m in out)
  assert out[0].dtype == np.float32
  benchmark.extra_info["workload"] = name
  benchmark.pedantic(call, rounds=5, iterations=1, warmup_rounds=1)
