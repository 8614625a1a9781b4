"""XLA options ntcore adds to `XLA_FLAGS` before JAX starts its CPU backend.

jaxlib 0.10's CPU backend hands 2-D convolutions to YNNPACK. For the
convolutions that per-example derivatives make, that is 2x slower than
XLA's own (Eigen) convolution measured on a 2-core x86 CPU: a
(10240, 8, 8, 64) x (3, 3, 64, 64) convolution, the batch of tangents of
an NTK-vector product, took 0.89 s with YNNPACK and 0.45 s without, and
the empirical NTK of a 3-layer CNN (`benchmarks`' `g_empirical_ntk_impl1`)
0.55 s against 0.40 s. YNNPACK keeps the dots, reductions and elementwise
fusions it is faster at: only `individual_convolution` is taken out.

The flag is added only when
  * `XLA_FLAGS` does not already set `xla_cpu_experimental_ynn_fusion_type`
    (the user's choice wins),
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

# jaxlib (major, minor) releases whose XLA knows the flag and was measured.
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
  """Adds `YNN_CONVOLUTIONS_OFF` to `environ["XLA_FLAGS"]` where the rules
  above allow it; returns whether it did. `release`: jaxlib's
  `(major, minor)`, None for the installed one."""
  if environ.get("NTCORE_XLA_FLAGS", "1").strip() == "0":
    return False
  flags = environ.get("XLA_FLAGS", "")
  if "xla_cpu_experimental_ynn_fusion_type" in flags:
    return False
  if (release or _jaxlib_release()) not in _MEASURED:
    return False
  environ["XLA_FLAGS"] = f"{flags} {YNN_CONVOLUTIONS_OFF}".strip()
  return True
