"""`ntcore.parallel`: kernels computed in blocks, across devices and hosts.

`batch(kernel_fn, batch_size)` is Neural Tangents' `nt.batch` plus ragged
sizes, symmetric `x2=None` savings, `jax.distributed` runs, an on-disk
block store for resuming killed computations, and executors that run the
blocks elsewhere (`ntcore.parallel.executor`; see docs/parallel.md).

Names are imported on first use, so that a plugin importing
`ntcore.parallel.executor` while the registry loads does not pull in the
kernel machinery (`batch` imports `ntcore.kernel_fn`) half-way through it.
"""

import importlib

_LAZY = {"BlockStore": "ntcore.parallel._store",
         "batch": "ntcore.parallel.batch"}

__all__ = ["BlockStore", "batch"]


def __getattr__(name):
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'ntcore.parallel' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(__all__))
