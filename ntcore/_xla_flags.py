"""XLA options ntcore adds to `XLA_FLAGS` before JAX starts its CPU backend.

Three, all measured on a 2-core x86 CPU with jaxlib 0.10:

`YNN_CONVOLUTIONS_OFF`. jaxlib 0.10's CPU backend hands 2-D convolutions
to YNNPACK. For the
convolutions that per-example derivatives make, that is 2x slower than
XLA's own (Eigen) convolution measured on a 2-core x86 CPU: a
(10240, 8, 8, 64) x (3, 3, 64, 64) convolution, the batch of tangents of
an NTK-vector product, took 0.89 s with YNNPACK and 0.45 s without, and
the empirical NTK of a 3-layer CNN (`benchmarks`' `g_empirical_ntk_impl1`)
0.55 s against 0.40 s. YNNPACK keeps the dots, reductions and elementwise
fusions it is faster at: only `individual_convolution` is taken out.

`FUSION_EMITTERS_OFF`. jaxlib 0.10 generates the code of each fused loop
through MLIR by default; XLA's older emitter, which generates LLVM IR
directly, compiles the same programs with far less memory: the NNGP and
NTK of Myrtle-5 raised the peak by 39 MB while compiling instead of 93 MB
(NT's jax 0.4.23: 20 MB), of an 8-layer CNN by 42 MB instead of 60 MB, and
the runtime's baseline after import is 10 MB lower. Steady times moved
within noise, Myrtle-5's from 0.21 to 0.15 s.

`MEMORY_SCHEDULER`. XLA:CPU orders a program's instructions by its
default scheduler, which favours running independent work concurrently;
its memory-optimized scheduler picks the order that needs the least
memory. The empirical NTK of a 3-layer CNN by Jacobian contraction or by
structured derivatives (`g_empirical_ntk_impl1`, `impl3`) then needs 144
instead of 152 and 156 MiB of temporary buffers, and a 16 x 16 block of
Myrtle-5's NNGP and NTK 32 instead of 44 MiB; steady times moved within
noise.

Each flag is added only when
  * `XLA_FLAGS` does not already set that option (the user's choice wins),
  * `NTCORE_XLA_FLAGS` is not `0` (the opt-out), and
  * the installed jaxlib is a release the flag was measured on: XLA
    aborts on a flag it does not know, and this one is experimental.
It takes effect only if JAX has not run a computation yet in the process
(XLA reads `XLA_FLAGS` once, when the backend starts): import ntcore first.
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import MutableMapping

YNN_CONVOLUTIONS_OFF = (
    "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution")
FUSION_EMITTERS_OFF = "--xla_cpu_use_fusion_emitters=false"
MEMORY_SCHEDULER = (
    "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED")
FLAGS = (YNN_CONVOLUTIONS_OFF, FUSION_EMITTERS_OFF, MEMORY_SCHEDULER)

# jaxlib (major, minor) releases whose XLA knows the flags and was measured.
_MEASURED = {(0, 10)}


def _jaxlib_release() -> tuple[int, int] | None:
  try:
    version = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return None
  try:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)
  except ValueError:
    return None


def add_flags(environ: MutableMapping[str, str] = os.environ,
              release: tuple[int, int] | None = None) -> bool:
  """Adds each of `FLAGS` to `environ["XLA_FLAGS"]` where the rules above
  allow it; returns whether it added any. `release`: jaxlib's
  `(major, minor)`, None for the installed one."""
  if environ.get("NTCORE_XLA_FLAGS", "1").strip() == "0":
    return False
  if (release or _jaxlib_release()) not in _MEASURED:
    return False
  flags = environ.get("XLA_FLAGS", "")
  new = [f for f in FLAGS if f.split("=")[0].lstrip("-") not in flags]
  if not new:
    return False
  environ["XLA_FLAGS"] = " ".join([flags, *new]).strip()
  return True
