"""The executor protocol: who computes the blocks of a batched kernel.

`ntcore.batch` makes the block plan (block ids, the blocks a symmetric
kernel skips, ragged edges; see `_blocks`), loads the blocks a store already
holds, and hands the rest to an executor as a `Job`. The executor computes
each pending block, here or elsewhere, and reports it with `job.done`; the
core assembles the kernel, keeps the store and draws the progress bar, so
every executor gives the same numbers and the same files.

* `"local"` (the default, `LocalExecutor`): in this process, one block per
  device per round, across the processes of a `jax.distributed` run.
* other names come from plugins through the `register_executors` hook
  (`nt-dask` registers `"dask"`: one Dask task per block, on a cluster).

An executor that computes blocks in other processes ships them
`job.task(block)` (the block's inputs, small and picklable) with
`job.arguments` and the kernel function, computes them there with
`compute_block`, and either returns the arrays (`job.done(block, leaves)`)
or writes them into `job.store` itself (`job.store.save`) and reports the
name only (`job.done(block)`), so that results need not travel through the
executor's own channels.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from typing import (Any, Callable, Optional, Protocol, Sequence,
                    runtime_checkable)

import numpy as np

from ntcore.errors import NtcoreError, PluginNotInstalledError
from ntcore.parallel import _call, _devices, _model
from ntcore.parallel._blocks import Block
from ntcore.parallel._store import BlockStore

LOCAL = "local"


class ExecutorError(NtcoreError, RuntimeError):
  """An executor that cannot run, or that lost blocks it was given."""


class ExecutorNotInstalledError(PluginNotInstalledError):
  """`executor=` names an executor that no loaded plugin registers."""


EXECUTOR_NOT_INSTALLED = (
    "executor={name!r} is not installed.\n"
    "  Available executors: {available}.{suggest}\n"
    "{provider}")
EXECUTOR_PROVIDED_BY = (
    "  The {name!r} executor is provided by the {dist} plugin:  {install}\n")


@runtime_checkable
class Executor(Protocol):
  """Runs the pending blocks of a `Job` and reports each with `job.done`.

  `run` returns once every block of `job.pending` is reported; it raises
  (`ExecutorError`, or the kernel function's own error) otherwise. Blocks
  may be reported in any order.
  """

  def run(self, job: "Job") -> None:
    ...


@dataclasses.dataclass(frozen=True)
class BlockTask:
  """What a block needs besides the kernel function: picklable, small.

  Attributes:
    block: the block.
    inputs: `(x1_rows, x2_cols or None, per-example keywords)`, host arrays
      padded to the block size, as `compute_block` takes them.
    expected: its arrays' `(shape, dtype)` in pytree order, for
      `BlockStore.load`.
  """

  block: Block
  inputs: tuple
  expected: tuple


def compute_block(kernel_fn: Callable[..., Any], arguments: tuple,
                  inputs: tuple) -> list[np.ndarray]:
  """One block's arrays (host numpy, pytree order), as `batch` computes it.

  Args:
    kernel_fn: the kernel function being batched.
    arguments: `(args, kwargs)`, the call's other arguments (`job.arguments`).
    inputs: `BlockTask.inputs`.

  The same path as the in-process executor on one device: `kernel_fn` on
  the block (an analytic kernel function jits itself and keeps the
  compilation for the next block of the same shape).
  """
  call = _call.BlockCall(kernel_fn, *arguments)
  return _devices.run_direct(call, [inputs], call.dynamic)[0]


def load_kernel_fn(spec: str) -> Callable[..., Any]:
  """The kernel function of `module:function`, as `ntcore kernel MODEL` loads
  it (the current directory first, then `PYTHONPATH`): what a worker
  process builds from the command line's MODEL.

  Raises:
    ModelLoadError: a malformed spec, a missing module or function, or a
      function that does not return a stax triple.
  """
  return _model.load_model(spec)


class Job:
  """The blocks of one batched call still to compute, and how to report them.

  Built by `batch`; an executor reads it and calls `done`.

  Attributes:
    pending: the blocks to compute (diagonal ones first).
    total: the number of blocks of the whole kernel (loaded ones included).
    store: the opened `BlockStore`, or None.
    kernel_fn: the function being batched.
    arguments: `(args, kwargs)`: its other arguments (picklable).
    messages: whether an executor may print status lines on stderr (the
      progress switch; False under `progress=False`).
  """

  def __init__(self, pending: Sequence[Block], total: int,
               store: Optional[BlockStore], kernel_fn: Callable[..., Any],
               call: Any, inputs: Callable[[Block], tuple],
               expected: Callable[[Block], list], report: Callable,
               messages: bool, local: Any = None):
    self.pending = list(pending)
    self.total = total
    self.store = store
    self.kernel_fn = kernel_fn
    self.call = call
    self.arguments = call.arguments()
    self.messages = messages
    self.local = local
    self._inputs = inputs
    self._expected = expected
    self._report = report
    self._todo = {b.name: b for b in self.pending}
    self.reported: set[str] = set()

  def inputs(self, block: Block) -> tuple:
    """The block's padded inputs (see `BlockTask.inputs`)."""
    return self._inputs(block)

  def expected(self, block: Block) -> list:
    """The block's arrays as `(shape, dtype)` pairs, in pytree order."""
    return [(tuple(s.shape), str(s.dtype)) for s in self._expected(block)]

  def task(self, block: Block) -> BlockTask:
    """What a worker needs to compute `block` (with `arguments`)."""
    return BlockTask(block, self.inputs(block), tuple(self.expected(block)))

  def done(self, block: Block, leaves: Optional[Sequence[Any]] = None
           ) -> None:
    """Reports a finished block.

    Args:
      block: one of `pending`; a block reported again is ignored.
      leaves: its arrays in pytree order; None when the executor wrote them
        into `store` itself (they are read back from there).

    Raises:
      ExecutorError: a block that is not pending, or reported without
        arrays while its file in the store is missing or damaged.
    """
    if block.name not in self._todo:
      raise ExecutorError(
          f"The executor reported block {block.name}, which this run did "
          f"not hand it (pending: {len(self.pending)} blocks).")
    if block.name in self.reported:
      return
    if leaves is None:
      if self.store is None:
        raise ExecutorError(
            f"The executor reported block {block.name} without its arrays, "
            f"but this run has no store= to read it from.")
      # A damaged file is warned about (and removed) by `load`.
      leaves = (self.store.load(block.name, self._expected(block))
                if block.name in self.store.done() else None)
      if leaves is None:
        raise ExecutorError(
            f"Block {block.name} was reported finished, but its file in "
            f"{self.store.path} is missing or damaged. Is the store on a "
            f"file system every worker and this process share?")
      self._report(block, leaves, False)
    else:
      self._report(block, list(leaves), True)
    self.reported.add(block.name)

  def missing(self) -> list[Block]:
    """The pending blocks not reported yet."""
    return [b for b in self.pending if b.name not in self.reported]

  def message(self, text: str) -> None:
    """Prints a status line on stderr (when `messages`)."""
    if self.messages:
      print(text, file=sys.stderr, flush=True)


def resolve(executor: "str | Executor | None" = None, **options
            ) -> "Executor":
  """The executor `executor=` names: None or "local", a registered name, or
  an object with `run(job)`.

  Args:
    executor: the name, or an executor object (returned as it is).
    options: passed to a registered executor's factory (the command line's
      `scheduler=`, `workers=`, `model=`); None values are left out.

  Raises:
    ExecutorNotInstalledError: no loaded plugin registers the name; names
      the plugin that provides it and its install line.
    ExecutorError: options for the local executor, or an object that is
      not an executor.
  """
  options = {k: v for k, v in options.items() if v is not None}
  if executor is None or executor == LOCAL:
    return local_executor(**options)
  if not isinstance(executor, str):
    if not isinstance(executor, Executor):
      raise ExecutorError(
          f"executor={executor!r} is neither a name nor an executor (an "
          f"object with a run(job) method). Pass 'local', a registered name "
          f"such as 'dask', or an executor object.")
    return executor
  return _registered(executor).factory(**options)


def local_executor(**options) -> "Executor":
  """The in-process executor; it takes no options."""
  from ntcore.parallel._local import LocalExecutor  # pylint: disable=import-outside-toplevel
  if options:
    raise ExecutorError(
        f"The local executor takes no {', '.join(sorted(options))} option; "
        f"those are for cluster executors (executor='dask', from the nt-dask "
        f"plugin).")
  return LocalExecutor()


def _registered(name: str):
  # pylint: disable=import-outside-toplevel
  from ntcore import registry
  from ntcore.registry import executors, providers
  specs = registry.get_registry().executors
  try:
    return specs.get(name)
  except ExecutorNotInstalledError:
    raise
  except NtcoreError as e:
    bare = name.rpartition(":")[2]
    if bare not in specs.by_name:
      available = [LOCAL] + sorted(f"{n} ({ss[0].plugin})"
                                   for n, ss in specs.by_name.items())
      dist = executors.EXECUTOR_PROVIDERS.get(bare)
      close = difflib.get_close_matches(
          bare, {LOCAL} | set(specs.by_name) | set(
              executors.EXECUTOR_PROVIDERS), n=3)
      raise ExecutorNotInstalledError(EXECUTOR_NOT_INSTALLED.format(
          name=name, available=", ".join(available),
          suggest=f" Did you mean {', '.join(close)}?" if close and (
              dist is None) else "",
          provider=(EXECUTOR_PROVIDED_BY.format(
              name=bare, dist=dist, install=providers.install_line(dist))
                    if dist else "") + specs._selection()).rstrip()
      ) from None
    raise  # a clash: the registry's message names both plugins
