"""`executor="dask"` on a real LocalCluster of 2 worker processes.

Kernels equal the in-process serial `batch` bit for bit (FC, and a CNN
with pooling whose blocks are mirrored across the diagonal): workers call
the kernel function on concrete blocks, as `device_count=0` does, so both
run the same compiled program (sharded blocks run inside a `shard_map`
program, which XLA fuses differently); workers build the
kernel function once, a worker SIGKILLed mid-block is survived with the
same result and without recomputing a finished block, and an unreachable
scheduler is a clear error within its time-out.
"""

import os
import signal
import socket
import sys
import threading
import time

import cloudpickle
import jax
import numpy as np
import pytest

import ntcore as nt
from ntcore import registry, stax
from ntcore.parallel import BlockStore

import nt_dask
from nt_dask import _worker, plugin

# Workers unpickle this module's functions by value: it is not importable
# under its pytest name there.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

GET = ("nngp", "ntk")


def fc():
  return stax.serial(stax.Dense(16, W_std=1.4, b_std=0.1), stax.Relu(),
                     stax.Dense(1, W_std=1.2))[2]


def cnn():
  return stax.serial(
      stax.Conv(8, (3, 3), padding="SAME", W_std=1.4, b_std=0.05),
      stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)),
      stax.Conv(8, (3, 3), padding="SAME", W_std=1.4, b_std=0.05),
      stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1))[2]


class Slow:
  """`kernel_fn` taking `seconds` longer per block, so a kill lands mid-run."""

  def __init__(self, kernel_fn, seconds):
    self.kernel_fn, self.seconds = kernel_fn, seconds

  def __call__(self, x1, x2=None, *args, **kwargs):
    time.sleep(self.seconds)
    return self.kernel_fn(x1, x2, *args, **kwargs)


def _x(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape)


def _assert_identical(a, b):
  for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b),
                  strict=True):
    assert np.asarray(u).dtype == np.asarray(v).dtype
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_registers_the_dask_executor(plugin_registry):
  (spec,) = plugin.register_executors()
  assert spec.name == "dask"
  assert isinstance(spec.factory(workers=2), nt_dask.DaskExecutor)
  assert plugin_registry.executors.get("dask").plugin == "nt-dask"


@pytest.fixture
def plugin_registry():
  with registry.registry_holding(("nt-dask", plugin)) as reg:
    yield reg


@pytest.mark.parametrize("symmetric", [True, False], ids=["sym", "pair"])
def test_fc_kernel_equals_in_process_batch(client, tmp_path, symmetric):
  fn, x = fc(), _x((11, 5))
  x2 = None if symmetric else _x((7, 5), seed=1)
  want = nt.batch(fn, 4, 0)(x, x2, GET)
  batched = nt.batch(fn, 4, store=tmp_path / "s",
                     executor=nt_dask.DaskExecutor(client=client))
  _assert_identical(batched(x, x2, GET), want)
  total = 6 if symmetric else 6  # 3 row blocks: 3 + 3, or 3 x 2
  assert batched.last_run == dict(total=total, computed=total, loaded=0)
  # The workers wrote every block into the store.
  assert len(BlockStore(tmp_path / "s").done()) == total


@pytest.mark.slow
def test_cnn_with_pooling_equals_in_process_batch(client, capsys):
  fn, x = cnn(), _x((10, 4, 4, 3))
  want = nt.batch(fn, 4, 0)(x, None, GET)
  # By name, with no store (the arrays come back as task results), on the
  # active client: the status line names its scheduler.
  before = client.run(_worker.cached_count)
  batched = nt.batch(fn, 4, executor="dask", progress=True)
  _assert_identical(batched(x, None, GET), want)
  err = capsys.readouterr().err
  assert f"nt-dask: 6 of 6 blocks on 2 workers of {client.scheduler.address}" \
      in err
  assert "dashboard: http" in err
  # Each worker built each kernel function once, however many blocks it ran.
  counts = client.run(_worker.cached_count)
  built = [counts[w] - before[w] for w in counts]
  assert sorted(set(built)) in ([1], [0, 1]), built
  again = nt.batch(fn, 4, executor="dask", progress=False)
  _assert_identical(again(x, None, GET), want)
  assert client.run(_worker.cached_count) == counts


@pytest.mark.slow
def test_a_sigkilled_worker_is_survived_bit_identically(client, tmp_path):
  fn, x = fc(), _x((18, 5))
  want = nt.batch(fn, 3, 0)(x, None, GET)  # 6 + 15 = 21 blocks
  store = BlockStore(tmp_path / "s")
  batched = nt.batch(Slow(fn, 0.3), 3, store=store,
                     executor=nt_dask.DaskExecutor(client=client))
  pids = client.run(os.getpid)
  out, failure = {}, []

  def work():
    try:
      out["k"] = batched(x, None, GET)
    except Exception as e:  # pylint: disable=broad-except
      failure.append(e)

  thread = threading.Thread(target=work)
  thread.start()
  victim, deadline = None, time.time() + 60
  while victim is None and time.time() < deadline:
    busy = {w: keys for w, keys in client.processing().items() if keys}
    if len(store.done()) >= 3 and busy:
      victim = next(iter(busy))
    else:
      time.sleep(0.02)
  assert victim is not None, "no worker was computing a block"
  finished = {n: os.stat(os.path.join(store.path, n + ".npz"))
              for n in store.done()}
  os.kill(pids[victim], signal.SIGKILL)
  thread.join(120)
  assert not thread.is_alive() and not failure, failure
  _assert_identical(out["k"], want)
  assert batched.last_run["computed"] == 21
  with pytest.raises(ProcessLookupError):
    os.kill(pids[victim], 0)
  # Blocks finished before the kill were not computed (or written) again.
  for name, before in finished.items():
    after = os.stat(os.path.join(store.path, name + ".npz"))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino,
                                                 before.st_mtime_ns), name


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error_in_bounded_time():
  address = f"tcp://127.0.0.1:{_closed_port()}"
  batched = nt.batch(fc(), 4, executor=nt_dask.DaskExecutor(
      scheduler=address, timeout=1))
  start = time.time()
  with pytest.raises(nt_dask.SchedulerUnreachableError,
                     match=rf"No Dask scheduler answered at '{address}' "
                           rf"within 1 s.*dask scheduler") as info:
    batched(_x((9, 5)), None, GET)
  assert time.time() - start < 15
  assert isinstance(info.value, (nt.NtcoreError, ConnectionError))


@pytest.mark.parametrize("kwargs, match", [
    (dict(scheduler="tcp://127.0.0.1:8786", workers=2), "Drop workers"),
    (dict(workers=0), "positive number"),
])
def test_bad_options_are_clear_errors(kwargs, match):
  with pytest.raises(nt.NtcoreError, match=match):
    nt_dask.DaskExecutor(**kwargs)
