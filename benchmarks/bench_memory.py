"""Where each analytic workload's peak memory goes: compile, arrays, temporaries.

For the workloads of `bench_bound.py` (FC, Myrtle-5, attention) and the
convolutional one of `../shared/bench/` (`b_conv_only`), each in a fresh
process, float32, NNGP and NTK of `jax.jit(kernel_fn)`:

* `baseline`: peak RSS after importing the library and running one tiny
  kernel (the runtime's own footprint, as `z_baseline` in the harness);
* `+ compile`: how much `jit(...).lower(x).compile()` raised the peak (XLA's
  optimization passes and the generated code; nothing has run yet);
* `+ run`: how much three calls raised it further (the arrays: inputs,
  outputs and XLA's temporary buffers, the allocator's slack);
* XLA's own `memory_analysis` of the compiled program: the argument, output
  and temporary buffers the runtime allocates per call (jax 0.4.23, NT's,
  reports zeros on CPU: shown as n/a).

Peak RSS is `ru_maxrss`, so each step shows what raised the peak, not what
is held. The same script runs under NT 0.6.5's environment
(`--module neural_tangents` with NT's python), so the two can be compared
above each one's own baseline:

    python benchmarks/bench_memory.py
    .bench/venv-nt/bin/python benchmarks/bench_memory.py --module neural_tangents
"""

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _conv(stax, width=128, depth=8):
  layers = []
  for _ in range(depth):
    layers += [stax.Conv(width, (3, 3), padding="SAME"), stax.Relu()]
  return stax.serial(*layers, stax.Flatten(), stax.Dense(10))


def _workloads():
  sys.path.insert(0, HERE)
  import bench_bound  # pylint: disable=import-error,import-outside-toplevel
  out = dict(bench_bound.WORKLOADS)
  out["conv"] = (_conv, (128, 16, 16, 3))
  return out


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(module: str, name: str) -> dict:
  """One workload in this process (call it in a fresh one)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  stax = importlib.import_module(module + ".stax")
  tiny = stax.serial(stax.Dense(1))[2]
  jax.block_until_ready(tiny(jnp.ones((2, 3)), None, "nngp"))
  baseline = _peak_mb()
  build, shape = _workloads()[name]
  kernel_fn = build(stax)[2]
  x = jnp.asarray(np.random.RandomState(0).randn(*shape).astype(np.float32))

  def call(x):
    return kernel_fn(x, None, ("nngp", "ntk"))
  compiled = jax.jit(call).lower(x).compile()
  after_compile = _peak_mb()
  for _ in range(3):
    jax.block_until_ready(compiled(x))
  after_run = _peak_mb()
  mem = compiled.memory_analysis()
  mb = 2 ** -20
  return dict(
      module=module, workload=name, jax=jax.__version__,
      baseline_mb=round(baseline, 1),
      compile_mb=round(after_compile - baseline, 1),
      run_mb=round(after_run - after_compile, 1),
      above_baseline_mb=round(after_run - baseline, 1),
      xla_argument_mb=round(mem.argument_size_in_bytes * mb, 1),
      xla_output_mb=round(mem.output_size_in_bytes * mb, 1),
      xla_temp_mb=round(mem.temp_size_in_bytes * mb, 1))


def table(rows: list[dict]) -> str:
  lines = ["| module | workload | baseline | + compile | + run | above baseline "
           "| XLA arguments | XLA output | XLA temporaries |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
  xla = ("xla_argument_mb", "xla_output_mb", "xla_temp_mb")
  for r in rows:
    known = any(r[f] for f in xla)
    cells = " | ".join(f"{r[f]:.1f} MB" if known else "n/a" for f in xla)
    lines.append(
        f"| {r['module']} | {r['workload']} | {r['baseline_mb']:.0f} MB "
        f"| {r['compile_mb']:.0f} MB | {r['run_mb']:.0f} MB "
        f"| {r['above_baseline_mb']:.0f} MB | {cells} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--module", default="ntcore")
  parser.add_argument("-w", "--workloads", default="fc,conv,myrtle,attention")
  parser.add_argument("--json", action="store_true",
                      help="print JSON lines instead of the table")
  parser.add_argument("--one", help=argparse.SUPPRESS)  # the child's workload
  args = parser.parse_args()
  if args.one:
    print(json.dumps(measure(args.module, args.one)))
    return
  rows = []
  for name in args.workloads.split(","):
    child = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--module", args.module,
         "--one", name], capture_output=True, text=True, check=True)
    rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
  if args.json:
    for r in rows:
      print(json.dumps(r))
  else:
    print(table(rows))


if __name__ == "__main__":
  main()
