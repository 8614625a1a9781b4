"""`ntcore.parallel`: kernels computed in blocks, across devices and hosts.

`batch(kernel_fn, batch_size)` is Neural Tangents' `nt.batch` plus ragged
sizes, symmetric `x2=None` savings, `jax.distributed` runs, an on-disk
block store for resuming killed computations, and executors that run the
blocks elsewhere (`ntcore.parallel.executor`; see docs/parallel.md).
"""

from ntcore.parallel._store import BlockStore
from ntcore.parallel.batch import batch

__all__ = ["BlockStore", "batch"]
