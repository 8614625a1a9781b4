"""Empirical NTK: Jacobian contraction vs NTK-vector products vs structured
derivatives (and what AUTO picks) on an FC network and a CNN.

Run: `pytest plugins/nt_montecarlo/benchmarks/bench_ntk.py` (not collected
by the default test run). Each case compiles once outside the timed call;
the timed call ends in `block_until_ready()`. AUTO's choice is recorded in
`extra_info["auto"]` and in the test id's `auto` case.
"""

import functools

import jax
import pytest

import _nets
from nt_montecarlo import NtkImplementation, empirical_ntk_fn
from nt_montecarlo import _auto

NETS = {
    "fc": (functools.partial(_nets.fc, width=512, depth=3), 16),
    "cnn": (functools.partial(_nets.cnn, channels=32, size=16), 8),
}
AXES = {"trace": ((-1,), ()), "full": ((), ())}


@pytest.mark.parametrize("vmap_axes", [0, None], ids=["vmap", "novmap"])
@pytest.mark.parametrize("axes", sorted(AXES))
@pytest.mark.parametrize("implementation", list(NtkImplementation),
                         ids=lambda i: i.name.lower())
@pytest.mark.parametrize("net", sorted(NETS))
def test_empirical_ntk(benchmark, net, implementation, axes, vmap_axes):
  make, n = NETS[net]
  params, apply_fn, shape = make()
  x1, x2 = _nets.inputs(shape, n, 0), _nets.inputs(shape, n, 1)
  trace_axes, diagonal_axes = AXES[axes]
  ntk_fn = empirical_ntk_fn(apply_fn, trace_axes, diagonal_axes, vmap_axes,
                            implementation)
  ntk_fn(x1, x2, params).block_until_ready()  # compile outside the timing
  benchmark.extra_info["auto"] = _auto.pick(
      apply_fn, x1, x2, params, trace_axes, diagonal_axes, vmap_axes).name
  out = benchmark.pedantic(lambda: ntk_fn(x1, x2, params).block_until_ready(),
                           rounds=5, iterations=1, warmup_rounds=1)
  assert out.shape[:2] == (n, n)
  assert bool(jax.numpy.isfinite(out).all())
