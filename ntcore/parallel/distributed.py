"""Multi-process runs (`jax.distributed`): who writes, and gathering blocks.

After `jax.distributed.initialize(...)`, `jax.devices()` lists the devices
of every process. `batch` lays its blocks out over all of them
(`_devices.ShardedRunner`), so each process computes the blocks on its own
devices; `allgather` then hands every process every block of the round.
Process 0 alone writes the block store; the others read it once it is
opened. Nothing here calls `jax.distributed.initialize` or changes
`jax.config`: that is the caller's (see docs/parallel.md).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def is_multiprocess() -> bool:
  """Whether this is one of several processes of a `jax.distributed` run."""
  return jax.process_count() > 1


def is_writer() -> bool:
  """Whether this process writes files (the block store, progress)."""
  return jax.process_index() == 0


def allgather(tree: Any) -> list[np.ndarray]:
  """The leaves of a pytree of global arrays, whole, on every process."""
  if is_multiprocess():
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    tree = multihost_utils.process_allgather(tree, tiled=True)
  return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def open_store(store, manifest: dict) -> None:
  """Opens the block store on every process: process 0 creates or checks
  the manifest first, then the others check it (a shared file system)."""
  if not is_multiprocess():
    store.open(manifest)
    return
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  if is_writer():
    store.open(manifest)
  multihost_utils.sync_global_devices("ntcore.parallel: block store opened")
  if not is_writer():
    store.open(manifest, write=False)
