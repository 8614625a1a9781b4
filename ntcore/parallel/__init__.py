"""`ntcore.parallel`: kernels computed in blocks, across devices and hosts.

`batch(kernel_fn, batch_size)` is Neural Tangents' `nt.batch` plus ragged
sizes, symmetric `x2=None` savings, `jax.distributed` runs and an on-disk
block store for resuming killed computations (see docs/parallel.md).
"""

from ntcore.parallel._store import BlockStore
from ntcore.parallel.batch import batch

__all__ = ["BlockStore", "batch"]
