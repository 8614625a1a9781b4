"""`DaskExecutor`: the blocks of `ntcore.batch` as Dask tasks.

One task per pending block, submitted at once; the scheduler hands them to
workers as they free up, so uneven blocks balance themselves. A worker
builds the kernel function once per process (`_worker.KernelSource`) and,
with a store, writes each finished block into it; the client only hears
that the block is done, reads it from the store and puts it into the
kernel. A worker that dies (SIGKILL, a preempted node) loses only the block
it was computing: the scheduler gives it to another worker, and blocks
already on disk are not computed again.

Where the workers come from, in this order: the `client=` given, the
`scheduler=` address, the active `distributed.Client` (as Dask libraries
use it), else a `LocalCluster` of `workers` processes started for the run
and closed after it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import uuid
from typing import Any, Optional

import distributed

from ntcore.parallel.executor import ExecutorError, Job

from nt_dask import _worker

CONNECT_TIMEOUT_S = 10.0
"""How long connecting to a scheduler may take before it is an error."""


class SchedulerUnreachableError(ExecutorError, ConnectionError):
  """No Dask scheduler answered at the address given, within the time-out."""


class DaskExecutor:
  """Runs each block as one Dask task (`executor="dask"`).

  Args:
    client: a `distributed.Client` to use.
    scheduler: a scheduler address (`tcp://host:8786`) to connect to.
    workers: the number of worker processes of the local cluster started
      when there is neither `client`, `scheduler` nor an active client
      (default: one per CPU core).
    model: the `module:function` spec of the kernel function; workers
      import and build it themselves instead of unpickling it (the command
      line passes its MODEL). The module must be importable on every
      worker.
    timeout: seconds to wait for the scheduler before
      `SchedulerUnreachableError`.

  Raises:
    ExecutorError: `workers` together with a scheduler or client (the
      cluster is theirs to size), or a non-positive `workers`.
  """

  name = "dask"

  def __init__(self, client: Optional[distributed.Client] = None,
               scheduler: Optional[str] = None,
               workers: Optional[int] = None, model: Optional[str] = None,
               timeout: float = CONNECT_TIMEOUT_S):
    if workers is not None and (client is not None or scheduler is not None):
      raise ExecutorError(
          f"workers={workers} sizes the local cluster nt-dask starts when no "
          f"scheduler is given; a scheduler's cluster has the workers that "
          f"joined it. Drop workers (--workers), or drop the scheduler.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(
        workers, int) or workers < 1):
      raise ExecutorError(f"workers={workers!r}; pass a positive number of "
                          f"worker processes.")
    self.client = client
    self.scheduler = scheduler
    self.workers = workers
    self.model = model
    self.timeout = timeout

  def __repr__(self):
    where = (f"scheduler={self.scheduler!r}" if self.scheduler else
             f"workers={self.workers}" if self.workers else "")
    return f"DaskExecutor({where})"

  # --- the cluster ----------------------------------------------------------
  @contextlib.contextmanager
  def _connected(self):
    """The client to submit to; a cluster started here is closed after."""
    if self.client is not None:
      yield self.client
      return
    if self.scheduler is not None:
      client = _connect(self.scheduler, self.timeout)
      try:
        yield client
      finally:
        client.close()
      return
    with contextlib.suppress(ValueError):  # ValueError: no active client
      yield distributed.default_client()
      return
    workers = self.workers or os.cpu_count() or 1
    # The dashboard needs bokeh; without it, ask for none rather than be
    # warned that there is none.
    dashboard = ":0" if importlib.util.find_spec("bokeh") else None
    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True,
        dashboard_address=dashboard, silence_logs=logging.ERROR) as cluster:
      with distributed.Client(cluster, set_as_default=False) as client:
        yield client

  # --- the run --------------------------------------------------------------
  def run(self, job: Job) -> None:
    """Submits every pending block of `job`; reports each as it finishes.

    Raises:
      SchedulerUnreachableError: no scheduler at `scheduler` in `timeout`.
      ExecutorError: a block whose workers kept dying (Dask gives up after
        `distributed.scheduler.allowed-failures` of them).
      Exception: the kernel function's own error on a worker.
    """
    with self._connected() as client:
      _describe(client, job)
      source = _worker.KernelSource.of(job.kernel_fn, self.model)
      flags = _worker.client_flags()
      run_id = uuid.uuid4().hex[:12]
      futures = {}
      for block in job.pending:
        future = client.submit(
            _worker.run_block, source, flags, job.arguments, job.task(block),
            job.store, key=f"ntcore-block-{run_id}-{block.name}", pure=False)
        futures[future] = block
      try:
        for future in distributed.as_completed(list(futures),
                                               loop=client.loop):
          block = futures.pop(future)
          job.done(block, _result(future, block))
          future.release()
      finally:
        if futures:
          client.cancel(list(futures))


def _connect(address: str, timeout: float) -> distributed.Client:
  try:
    return distributed.Client(address, timeout=timeout, set_as_default=False)
  except (OSError, TimeoutError) as e:
    raise SchedulerUnreachableError(
        f"No Dask scheduler answered at {address!r} within {timeout:g} s "
        f"({type(e).__name__}: {e}). Start one there (`dask scheduler`, "
        f"then `dask worker {address}` on each node), check the address "
        f"and that its port is reachable from here, or leave out the "
        f"scheduler (--scheduler) for a local cluster.") from None


def _result(future, block) -> Any:
  try:
    return future.result()
  except distributed.KilledWorker as e:
    raise ExecutorError(
        f"Block {block.name}: every worker that computed it died ({e}). A "
        f"block that kills its worker usually runs out of memory: use a "
        f"smaller batch_size, or give the workers more memory. Finished "
        f"blocks are kept in the store; run again to continue.") from None


def _describe(client, job: Job) -> None:
  """One status line: blocks, workers, scheduler, and the dashboard link."""
  info = client.scheduler_info()
  workers = len(info.get("workers", {}))
  line = (f"nt-dask: {len(job.pending)} of {job.total} blocks on {workers} "
          f"workers of {info.get('address', client.scheduler.address)}")
  if "dashboard" in info.get("services", {}):
    line += f"; dashboard: {client.dashboard_link}"
  job.message(line)
