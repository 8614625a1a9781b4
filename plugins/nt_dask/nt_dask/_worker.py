"""What runs on a Dask worker: one block, with a kernel function built once.

A task carries a `KernelSource` (the `module:function` spec of the command
line, or the kernel function pickled once on the client) and the JAX flags
of the client. The worker builds the kernel function the first time it sees
a source and keeps it in `_CACHE` for the life of its process, so the
compiled block computation is reused by every later block of that shape:
a block never pays a recompile.

With a store, the worker writes the finished block into it itself (the
store's atomic writes) and returns only None, so results never travel
through the scheduler. A block whose valid file is already in the store is
not computed again: Dask reruns the tasks whose results were held by a
worker that died, and those blocks are on disk already.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from typing import Any, Callable, Optional

import cloudpickle
import jax

from ntcore.parallel import executor as nt_executor

# The flags that change what a kernel function computes: a worker runs with
# the client's, whatever its own process started with.
JAX_FLAGS = ("jax_enable_x64", "jax_default_matmul_precision",
             "jax_numpy_rank_promotion", "jax_numpy_dtype_promotion",
             "jax_threefry_partitionable", "jax_default_prng_impl")

_CACHE: dict[str, Callable[..., Any]] = {}
_LOCK = threading.Lock()


def client_flags() -> tuple:
  """`(name, value)` of every flag in `JAX_FLAGS` in this process."""
  flags = []
  for name in JAX_FLAGS:
    try:
      flags.append((name, getattr(jax.config, name)))
    except AttributeError:  # a flag this JAX version does not have
      continue
  return tuple(flags)


def apply_flags(flags: tuple) -> None:
  """Sets the client's JAX flags in this (worker) process.

  A worker process is the client's computation continued elsewhere, so it
  takes the client's settings, as a script would set them at its start.
  """
  for name, value in flags:
    if getattr(jax.config, name) != value:
      jax.config.update(name, value)


@dataclasses.dataclass(frozen=True)
class KernelSource:
  """Where a worker gets the kernel function from.

  Attributes:
    spec: `module:function` returning a stax triple (importable on the
      workers), or None.
    payload: the kernel function pickled with cloudpickle, or None.
    token: names the function in the worker's cache.
  """

  spec: Optional[str]
  payload: Optional[bytes]
  token: str

  @classmethod
  def of(cls, kernel_fn: Callable[..., Any], model: Optional[str]
         ) -> "KernelSource":
    """The source for `kernel_fn`: the `model` spec when given, else the
    function itself, pickled once here."""
    if model is not None:
      return cls(model, None, "spec:" + model)
    payload = cloudpickle.dumps(kernel_fn)
    return cls(None, payload, "pickle:" + hashlib.sha256(payload).hexdigest())

  def kernel_fn(self, flags: tuple) -> Callable[..., Any]:
    """The kernel function, built on the first call in this process."""
    key = f"{self.token}|{flags!r}"
    with _LOCK:
      apply_flags(flags)
      fn = _CACHE.get(key)
      if fn is None:
        fn = (nt_executor.load_kernel_fn(self.spec) if self.spec is not None
              else cloudpickle.loads(self.payload))
        _CACHE[key] = fn
      return fn


def run_block(source: KernelSource, flags: tuple, arguments: tuple,
              task: nt_executor.BlockTask, store) -> Optional[list]:
  """Computes one block on a worker.

  Returns:
    None when `store` is given (the block is written there), else the
    block's arrays.
  """
  name = task.block.name
  if store is not None and name in store.done() and store.load(
      name, list(task.expected)) is not None:
    return None
  leaves = nt_executor.compute_block(source.kernel_fn(flags), arguments,
                                     task.inputs)
  if store is None:
    return leaves
  store.save(name, leaves)
  return None


def cached_count() -> int:
  """How many kernel functions this process has built (for tests)."""
  return len(_CACHE)
