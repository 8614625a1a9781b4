"""How close the analytic kernels come to this machine's limits.

For the fully-connected and Myrtle workloads of `../shared/bench/`
(`a_fc`: Dense(512)-Relu x 10 + Dense(1), N = 2000 inputs of dimension 64;
`c_myrtle`: Myrtle-5 on 8x8x3 images, N = 32, full pixel-pixel
covariances; float32, NNGP and NTK, `jax.jit(kernel_fn)`), it prints

* the machine: streaming bandwidth (one fused `x * a + b` pass over
  256 MiB, read + write) and float32 matmul throughput (2048^3), best of 5;
* XLA's own account of the compiled program (`cost_analysis`: flops,
  transcendental functions, bytes accessed; `memory_analysis`: argument,
  output and temporary buffers, generated code);
* the bounds those imply: bytes accessed / bandwidth, flops / matmul peak,
  and the output alone written once / bandwidth (what a program fused
  into a single pass would move), next to the measured steady time
  (median of 5 calls).

The kernels are memory-bound passes: the time is compared with
`bytes / bandwidth`. The same script runs under NT 0.6.5's environment
(`--module neural_tangents`, with NT's python), so the two programs' XLA
accounts can be put side by side.

    python benchmarks/bench_bound.py
    /tmp/venv-nt/bin/python benchmarks/bench_bound.py --module neural_tangents
"""

import argparse
import importlib
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def _fc(stax, width=512, depth=10):
  layers = []
  for _ in range(depth):
    layers += [stax.Dense(width, W_std=1.5, b_std=0.05), stax.Relu()]
  return stax.serial(*layers, stax.Dense(1, W_std=1.5, b_std=0.05))


def _myrtle5(stax, width=64):
  def conv():
    return stax.Conv(width, (3, 3), W_std=2 ** 0.5, b_std=0.0, padding="SAME")
  return stax.serial(
      conv(), stax.Relu(), conv(), stax.Relu(),
      stax.AvgPool((2, 2), strides=(2, 2)),
      conv(), stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)),
      conv(), stax.Relu(),
      stax.GlobalAvgPool(), stax.Dense(10, W_std=2 ** 0.5, b_std=0.0))


def _attention(stax, width=64):
  def attention(**kwargs):
    return stax.GlobalSelfAttention(
        n_chan_out=width, n_chan_key=width, n_chan_val=width, n_heads=4,
        attention_mechanism="SOFTMAX", **kwargs)
  return stax.serial(
      stax.Dense(width, W_std=1.0, b_std=0.0), attention(linear_scaling=True),
      stax.Relu(), stax.Dense(width, W_std=1.5, b_std=0.05), attention(),
      stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1, W_std=1.5, b_std=0.05))


WORKLOADS = {"fc": (_fc, (2000, 64)), "myrtle": (_myrtle5, (32, 8, 8, 3)),
             "attention": (_attention, (256, 16, 32))}


def _best(fn, repeats=5) -> float:
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return min(times)


def machine() -> dict:
  """Streaming bandwidth (bytes/s) and float32 matmul rate (flop/s)."""
  x = jnp.ones((2 ** 26,), jnp.float32)
  stream = jax.jit(lambda v: v * 1.0001 + 1.0)
  bandwidth = 2 * x.nbytes / _best(lambda: stream(x))
  a = jnp.ones((2048, 2048), jnp.float32)
  matmul = jax.jit(jnp.dot)
  flops = 2 * 2048 ** 3 / _best(lambda: matmul(a, a))
  return dict(bandwidth=bandwidth, matmul_flops=flops)


def _first(analysis):
  # jax < 0.4.30 returns a list with one dict per program.
  return analysis[0] if isinstance(analysis, (list, tuple)) else analysis


def workload(module: str, name: str) -> dict:
  """XLA's account of one workload's compiled program and its steady time."""
  stax = importlib.import_module(module + ".stax")
  build, shape = WORKLOADS[name]
  kernel_fn = build(stax)[2]
  x = jnp.asarray(np.random.RandomState(0).randn(*shape).astype(np.float32))

  def call(x):
    return kernel_fn(x, None, ("nngp", "ntk"))
  compiled = jax.jit(call).lower(x).compile()
  cost = _first(compiled.cost_analysis())
  mem = compiled.memory_analysis()
  out = jax.eval_shape(call, x)
  out_bytes = sum(l.size * l.dtype.itemsize
                  for l in jax.tree_util.tree_leaves(out))
  seconds = statistics.median(
      [_best(lambda: compiled(x), 1) for _ in range(5)])
  return dict(
      module=module, workload=name, seconds=seconds,
      flops=float(cost.get("flops", 0)),
      transcendentals=float(cost.get("transcendentals", 0)),
      bytes_accessed=float(cost.get("bytes accessed", 0)),
      output_bytes=out_bytes,
      temp_bytes=mem.temp_size_in_bytes,
      argument_bytes=mem.argument_size_in_bytes,
      code_bytes=mem.generated_code_size_in_bytes)


def table(m: dict, rows: list[dict]) -> str:
  lines = [
      f"machine: {m['bandwidth'] / 1e9:.1f} GB/s streaming, "
      f"{m['matmul_flops'] / 1e9:.0f} GFLOP/s float32 matmul, "
      f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}",
      "",
      "| module | workload | measured | bytes accessed (XLA) | bytes / BW "
      "| flops (XLA) | flops / peak | output once / BW | temporaries "
      "| measured / (bytes / BW) |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    t_bytes = r["bytes_accessed"] / m["bandwidth"]
    lines.append(
        f"| {r['module']} | {r['workload']} | {r['seconds']:.3f} s "
        f"| {r['bytes_accessed'] / 1e9:.2f} GB | {t_bytes:.3f} s "
        f"| {r['flops'] / 1e9:.2f} G | {r['flops'] / m['matmul_flops']:.3f} s "
        f"| {r['output_bytes'] / m['bandwidth']:.4f} s "
        f"| {r['temp_bytes'] / 2 ** 20:.0f} MiB "
        f"| {r['seconds'] / t_bytes if t_bytes else float('nan'):.1f} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--module", default="ntcore")
  parser.add_argument("-w", "--workloads", default="fc,myrtle")
  parser.add_argument("--json", action="store_true",
                      help="print JSON lines instead of the table")
  args = parser.parse_args()
  m = machine()
  rows = [workload(args.module, w) for w in args.workloads.split(",")]
  if args.json:
    for r in rows:
      print(json.dumps(dict(r, **m)))
  else:
    print(table(m, rows))


if __name__ == "__main__":
  main()
