"""Fit `_auto`'s throughput constants to measured NTK timings.

Run: `python plugins/nt_montecarlo/benchmarks/calibrate_auto.py [--quick]`
from the repository root. For a grid of FC and CNN cases it times the three
implementations (median of 3 calls after compiling), computes the cost
model's features (`_auto.components`) and fits
`seconds = sum_i SECONDS_PER[i] * feature_i` (`_auto.FEATURES`) by
non-negative least squares on relative error. It prints every case, the fit,
and how often the model's choice is the measured fastest (and how much time
a wrong pick loses). Paste the constants into `_auto.py`.
"""

import sys
import time

import jax
import numpy as np
from scipy.optimize import nnls

import _nets
from nt_montecarlo import NtkImplementation, _args, _auto, empirical_ntk_fn

IMPLS = [NtkImplementation.JACOBIAN_CONTRACTION,
         NtkImplementation.NTK_VECTOR_PRODUCTS,
         NtkImplementation.STRUCTURED_DERIVATIVES]


def cases(quick):
  nets = [("fc128", lambda: _nets.fc(width=128), 8),
          ("fc512", lambda: _nets.fc(width=512), 16),
          ("fc512-o1", lambda: _nets.fc(width=512, n_out=1), 16),
          ("cnn8", lambda: _nets.cnn(channels=8, size=8), 8),
          ("cnn32", lambda: _nets.cnn(channels=32, size=16), 8)]
  if quick:
    nets = nets[1:2] + nets[-1:]
  for name, make, n in nets:
    for axes_name, axes in (("trace", ((-1,), ())), ("full", ((), ()))):
      for vmap_axes in (0, None):
        yield f"{name}-{axes_name}-{'vmap' if vmap_axes == 0 else 'novmap'}", \
            make, n, axes, vmap_axes


def measure(fn, *args, repeats=3):
  fn(*args).block_until_ready()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn(*args).block_until_ready()
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def main(quick=False):
  rows, seconds, table = [], [], []
  for name, make, n, (trace_axes, diagonal_axes), vmap_axes in cases(quick):
    params, apply_fn, shape = make()
    x1, x2 = _nets.inputs(shape, n, 0), _nets.inputs(shape, n, 1)
    prep = _args.prepare(apply_fn, {}, params, vmap_axes, x1, x2)
    comps = _auto.components(apply_fn, prep, params, x1, x2, trace_axes,
                             diagonal_axes)
    measured = {}
    for impl in IMPLS:
      fn = empirical_ntk_fn(apply_fn, trace_axes, diagonal_axes, vmap_axes,
                            impl)
      measured[impl] = measure(fn, x1, x2, params)
      rows.append(comps[impl])
      seconds.append(measured[impl])
    table.append((name, measured, comps))
    print(name, {i.name[:3]: f"{t * 1e3:.1f}ms" for i, t in measured.items()},
          flush=True)

  a = np.asarray(rows, float) / np.asarray(seconds)[:, None]
  coef, _ = nnls(a, np.ones(len(seconds)))
  print("fit: SECONDS_PER = (" + ", ".join("%.3g" % c for c in coef)
        + ")  # " + ", ".join(_auto.FEATURES))
  right, lost = 0, 0.
  for name, measured, comps in table:
    pred = {i: float(np.dot(coef, comps[i])) for i in IMPLS}
    best, chosen = min(measured, key=measured.get), min(pred, key=pred.get)
    right += best == chosen
    lost += measured[chosen] / measured[best] - 1
    print(f"{name:24s} fastest {best.name:24s} model picks {chosen.name:24s}"
          f" ({measured[chosen] / measured[best]:.2f}x the fastest)")
  print(f"model picks the fastest in {right}/{len(table)} cases; "
        f"mean slowdown {lost / len(table):.1%}; jax {jax.__version__}, "
        f"{jax.devices()[0].device_kind}")


if __name__ == "__main__":
  main(quick="--quick" in sys.argv)
