"""GPU benchmark: NT's headline CNN kernel and the empirical-NTK calibration.

1. **CNN-21 NTK.** The NTK of 21 layers of `Conv(3x3, SAME, W_std=1.41,
   b_std=0.05)` + `Relu`, then `GlobalAvgPool` and `Dense`, on 32x32x3
   images (full pixel-pixel covariances), float32, computed in blocks with
   `ntcore.batch`. Reported in ms per entry of the `N x N` kernel, as NT's
   README reports it (2.70 ms per entry on a V100). The program is compiled
   on one block first; the timed call is the whole `N x N` kernel.
2. **Empirical NTK.** Each implementation of `nt.empirical_ntk_fn`, and
   `AUTO`, timed on the CNN and MLP of `nt_montecarlo`'s benchmarks with
   their `measure` (median of 3 calls after one compiling call); at full
   size the plugin's AUTO calibration (`calibrate_auto.main`) runs after,
   printing its cases and the fitted constants for this device.

Run from the repository root:

    python benchmarks/gpu.py            # full size on a GPU, tiny on CPU
    python benchmarks/gpu.py --tiny     # seconds, any device
    python benchmarks/gpu.py --full --n 128 --batch-size 8

The result is a Markdown table (`| workload | size | value | unit |`);
every value is a median or a single timed call as said in its row.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", False)

# pylint: disable=wrong-import-position
import numpy as np

import ntcore as nt
from ntcore import stax

_CALIBRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                            "plugins", "nt_montecarlo", "benchmarks")


def cnn_kernel_fn(depth: int):
  """NT README's CNN: `depth` x (Conv 3x3 SAME + Relu), GAP, Dense."""
  layers = []
  for _ in range(depth):
    layers += [stax.Conv(64, (3, 3), padding="SAME", W_std=1.41, b_std=0.05),
               stax.Relu()]
  layers += [stax.GlobalAvgPool(), stax.Dense(10, W_std=1.41, b_std=0.05)]
  return stax.serial(*layers)[2]


def cnn_ms_per_entry(depth: int, n: int, size: int, batch_size: int):
  """ms per entry of the `n x n` NTK, and the seconds of the timed call."""
  kernel_fn = cnn_kernel_fn(depth)
  x = np.random.default_rng(0).standard_normal((n, size, size, 3)).astype(
      np.float32)
  batched = nt.batch(kernel_fn, batch_size, progress=False)
  # Compile on two blocks' worth: a diagonal and an off-diagonal block.
  jax.block_until_ready(batched(x[:2 * batch_size], None, "ntk"))
  start = time.perf_counter()
  ntk = jax.block_until_ready(batched(x, None, "ntk"))
  seconds = time.perf_counter() - start
  if ntk.shape != (n, n) or not np.all(np.isfinite(np.asarray(ntk))):
    raise RuntimeError(f"CNN NTK has shape {ntk.shape} or non-finite values")
  return 1e3 * seconds / n ** 2, seconds


def empirical_rows(tiny: bool):
  """Rows timing each empirical-NTK implementation with the plugin's tools."""
  sys.path.insert(0, _CALIBRATION)
  import _nets  # pylint: disable=import-outside-toplevel,import-error
  import calibrate_auto  # pylint: disable=import-outside-toplevel,import-error
  from nt_montecarlo import NtkImplementation  # pylint: disable=import-outside-toplevel
  if tiny:
    nets = [("mlp", _nets.fc(width=16, depth=1, d_in=8), 4),
            ("cnn", _nets.cnn(channels=4, depth=1, size=4), 2)]
  else:
    nets = [("mlp", _nets.fc(), 64), ("cnn", _nets.cnn(), 32)]
  rows = []
  for name, (params, apply_fn, shape), n in nets:
    x1, x2 = _nets.inputs(shape, n, 0), _nets.inputs(shape, n, 1)
    for impl in (*calibrate_auto.IMPLS, NtkImplementation.AUTO):
      fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0,
                               implementation=impl)
      ms = 1e3 * calibrate_auto.measure(fn, x1, x2, params)
      rows.append((f"entk-{name}-{impl.name.lower()}",
                   f"N={n} {'x'.join(map(str, shape))}", ms,
                   "ms/call (median of 3)"))
  return rows, calibrate_auto


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  size = parser.add_mutually_exclusive_group()
  size.add_argument("--tiny", action="store_true",
                    help="a tiny size that runs in seconds (default on CPU)")
  size.add_argument("--full", action="store_true",
                    help="the full size even on CPU")
  parser.add_argument("--n", type=int, default=64, help="images (full size)")
  parser.add_argument("--batch-size", type=int, default=8)
  parser.add_argument("--no-calibrate", action="store_true",
                      help="skip nt_montecarlo's AUTO calibration")
  args = parser.parse_args(argv)
  device = jax.devices()[0]
  tiny = args.tiny or (not args.full and device.platform == "cpu")
  depth, image, n, block = ((2, 4, 4, 2) if tiny
                            else (21, 32, args.n, args.batch_size))
  print(f"# {'tiny' if tiny else 'full'} size on {device.platform} "
        f"({device.device_kind}), jax {jax.__version__}, float32", flush=True)
  rows = []
  ms, seconds = cnn_ms_per_entry(depth, n, image, block)
  rows.append((f"cnn{depth}-ntk", f"N={n} {image}x{image}x3 blocks of {block}",
               ms, f"ms/entry ({seconds:.2f} s, one call after compiling)"))
  entk, calibrate_auto = empirical_rows(tiny)
  rows += entk
  print("| workload | size | value | unit |")
  print("|---|---|---|---|")
  for name, what, value, unit in rows:
    print(f"| {name} | {what} | {value:.4g} | {unit} |")
  sys.stdout.flush()
  if not tiny and not args.no_calibrate:
    print("\n# nt_montecarlo AUTO calibration on this device", flush=True)
    calibrate_auto.main(quick=False)


if __name__ == "__main__":
  main()
