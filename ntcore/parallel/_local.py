"""The in-process executor: today's `batch`, one block per device per round.

Blocks of one kind (diagonal, then off-diagonal) are computed in rounds of
one per device: with several devices (of every process under
`jax.distributed`) by a cached `_devices.ShardedRunner`, on one device (or
when the batched function is being traced) by calling the kernel function
on each block. Each finished block is reported to the job, which assembles
it and writes it into the store.
"""

from __future__ import annotations

from ntcore.parallel import _blocks, _devices


def _hashable(x) -> bool:
  try:
    hash(x)
  except TypeError:
    return False
  return True


class LocalExecutor:
  """Runs a job's blocks in this process, on `batch`'s devices."""

  name = "local"

  def __repr__(self):
    return "LocalExecutor()"

  def run(self, job) -> None:
    """Computes every pending block of `job`, diagonal ones first."""
    run = job.local
    for diagonal in (True, False):
      todo = [b for b in job.pending if b.diagonal == diagonal]
      if not todo:
        continue
      runner = _runner(run, diagonal)
      for group in _blocks.chunks(todo, runner.n if runner else 1):
        inputs = [job.inputs(b) for b in group]
        results = (runner(inputs, run.call.dynamic) if runner else
                   _devices.run_direct(run.call, inputs, run.call.dynamic,
                                       host=not run.traced))
        for block, result in zip(group, results):
          job.done(block, result)


def _runner(run, diagonal: bool):
  """A cached `ShardedRunner` (None on one device, and when traced)."""
  if len(run.devices) == 1 or run.traced:
    return None
  key = (diagonal, tuple(run.devices), run.call.treedef, run.call.static,
         tuple(sorted(run.per_example)))
  if not _hashable(key):
    return _devices.ShardedRunner(run.call, run.devices)
  if key not in run.runners:
    run.runners[key] = _devices.ShardedRunner(run.call, run.devices)
  return run.runners[key]
