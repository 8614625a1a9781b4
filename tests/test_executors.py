"""The executor protocol of `ntcore.batch`, with tiny executors defined here.

The core alone (no Dask): executors registered by fake plugins through
`register_executors`, chosen by name; the errors for an executor that is
not installed, unknown, misused or losing blocks; and the CLI's
`--executor` options. The real Dask executor is tested in
plugins/nt_dask/tests.
"""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import ntcore as nt
from ntcore import stax
from ntcore.errors import BatchError
from ntcore.parallel import BlockStore
from ntcore.parallel import executor as ex
from ntcore.registry import ExecutorSpec, hookimpl


def _kernel_fn():
  return stax.serial(stax.Dense(8, W_std=1.3, b_std=0.2), stax.Relu(),
                     stax.Dense(1))[2]


def _x(n=7, d=3, seed=0):
  return np.random.default_rng(seed).standard_normal((n, d))


class InOrder:
  """Computes the blocks with `compute_block` from their `BlockTask`s, as a
  worker process would; `write=True` saves them into the store itself and
  reports names only. `skip` names blocks it drops."""

  name = "in-order"

  def __init__(self, write=False, skip=(), reverse=False):
    self.write, self.skip, self.reverse = write, set(skip), reverse
    self.seen = []

  def run(self, job):
    for block in (reversed(job.pending) if self.reverse else job.pending):
      if block.name in self.skip:
        continue
      task = job.task(block)
      self.seen.append(task)
      leaves = ex.compute_block(job.kernel_fn, job.arguments, task.inputs)
      if self.write:
        job.store.save(block.name, leaves)
        job.done(block)
      else:
        job.done(block, leaves)


class Plugin:
  """A fake plugin registering `InOrder` as `in-order`."""

  @staticmethod
  @hookimpl
  def register_executors():
    return [ExecutorSpec("in-order", InOrder)]


FAKE = ("nt-fake-executor", Plugin)


def _equal(a, b):
  """Equal to float64 round-off: blocks computed in another order of calls
  may run in the program shared by the network's structure or in its own
  (`ntcore/_network/dispatch.py`), which XLA fuses differently."""
  for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("x2", [None, _x(5, seed=1)], ids=["sym", "pair"])
def test_registered_executor_by_name_gives_the_local_result(use_plugins, x2):
  fn, x = _kernel_fn(), _x()
  use_plugins(FAKE)
  want = nt.batch(fn, 3)(x, x2, ("nngp", "ntk"))
  batched = nt.batch(fn, 3, executor="in-order")
  _equal(batched(x, x2, ("nngp", "ntk")), want)
  # 7 examples in blocks of 3: 3 row blocks (the last one short).
  assert batched.last_run == dict(total=6 if x2 is None else 6, computed=6,
                                  loaded=0)


def test_tasks_carry_padded_block_inputs_only():
  fn, x = _kernel_fn(), _x()
  runner = InOrder()
  nt.batch(fn, 3, executor=runner)(x, None, "nngp")
  shapes = {t.block.name: t.inputs[0].shape for t in runner.seen}
  assert set(shapes.values()) == {(3, 3)}  # the short last block is padded
  diagonal = [t for t in runner.seen if t.block.diagonal]
  assert all(t.inputs[1] is None for t in diagonal)
  np.testing.assert_array_equal(runner.seen[-1].inputs[1][-2:], x[[6, 6]])
  assert all(t.expected == (((3, 3), "float64"),) for t in runner.seen)


def test_executor_writing_the_store_itself_and_resuming(tmp_path):
  fn, x = _kernel_fn(), _x()
  want = nt.batch(fn, 3)(x, None, ("nngp", "ntk"))
  first = nt.batch(fn, 3, store=tmp_path / "s",
                   executor=InOrder(write=True, skip={"p_0_2", "d_2_2"}))
  with pytest.raises(ex.ExecutorError, match="2 of 6 blocks not computed"):
    first(x, None, ("nngp", "ntk"))
  assert BlockStore(tmp_path / "s").done() == {"d_0_0", "d_1_1", "p_0_1",
                                               "p_1_2"}
  again = nt.batch(fn, 3, store=tmp_path / "s",
                   executor=InOrder(write=True, reverse=True))
  _equal(again(x, None, ("nngp", "ntk")), want)
  assert again.last_run == dict(total=6, computed=2, loaded=4)


def test_a_block_reported_without_a_store_file_is_an_error(tmp_path):
  class Liar(InOrder):
    def run(self, job):
      job.done(job.pending[0])

  with pytest.raises(ex.ExecutorError, match="missing or damaged"):
    nt.batch(_kernel_fn(), 3, store=tmp_path / "s", executor=Liar())(
        _x(), None, "nngp")
  with pytest.raises(ex.ExecutorError, match="no store="):
    nt.batch(_kernel_fn(), 3, executor=Liar())(_x(), None, "nngp")


def test_not_installed_executor_names_the_plugin_and_install_line(
    use_plugins):
  fn = _kernel_fn()
  use_plugins()
  with pytest.raises(ex.ExecutorNotInstalledError,
                     match=r"'dask' executor is provided by the nt-dask "
                           r"plugin:  pip install") as info:
    nt.batch(fn, 3, executor="dask")
  assert "Available executors: local." in str(info.value)
  assert isinstance(info.value, LookupError)


def test_unknown_executor_suggests_close_names(use_plugins):
  fn = _kernel_fn()
  use_plugins(FAKE)
  with pytest.raises(ex.ExecutorNotInstalledError,
                     match=r"(?s)'in-ordr' is not installed.*local, in-order "
                           r"\(nt-fake-executor\).*Did you mean in-order"):
    nt.batch(fn, 3, executor="in-ordr")


def test_misused_executors_are_clear_errors(use_plugins):
  fn = _kernel_fn()
  use_plugins(FAKE)
  with pytest.raises(BatchError, match="batch_size > 0"):
    nt.batch(fn, 0, executor="in-order")
  with pytest.raises(ex.ExecutorError, match="neither a name nor"):
    nt.batch(fn, 3, executor=42)
  with pytest.raises(ex.ExecutorError, match="takes no scheduler option"):
    ex.resolve("local", scheduler="tcp://127.0.0.1:8786")
  batched = nt.batch(fn, 3, executor="in-order")
  with pytest.raises(BatchError, match="being traced"):
    jax.jit(lambda x: batched(x, None, "nngp"))(_x())


def test_an_executor_named_local_is_refused(plugin_manager):
  class Bad:
    @staticmethod
    @hookimpl
    def register_executors():
      return [ExecutorSpec("local", InOrder)]

  from ntcore import registry  # pylint: disable=import-outside-toplevel
  with pytest.warns(registry.PluginLoadWarning, match="in-process"):
    reg = registry.Registry(plugin_manager(("nt-bad", Bad), FAKE))
    assert sorted(reg.executors.by_name) == ["in-order"]
  assert [e.plugin for e in reg.errors()] == ["nt-bad"]


def test_cli_executor_options(tmp_path, use_plugins, monkeypatch):
  from click.testing import CliRunner  # pylint: disable=import-outside-toplevel
  from ntcore import cli  # pylint: disable=import-outside-toplevel
  from ntcore.parallel import _command  # pylint: disable=import-outside-toplevel
  use_plugins()
  np.save(tmp_path / "x.npy", _x())
  (tmp_path / "models_exec.py").write_text(textwrap.dedent("""
      from ntcore import stax
      def fc():
        return stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
  """))
  monkeypatch.chdir(tmp_path)
  runner = CliRunner()
  base = ["kernel", "models_exec:fc", "x.npy", "--out", "k.npz",
          "--batch-size", "3"]
  result = runner.invoke(cli.main, base + ["--executor", "dask"])
  assert result.exit_code == 1
  assert "nt-dask plugin:  pip install" in result.output
  result = runner.invoke(cli.main, base + ["--scheduler", "tcp://h:8786"])
  assert result.exit_code == 1 and "executor='dask'" in result.output
  assert not (tmp_path / "k.npz.blocks").exists()
  assert _command.resume_command(
      "m:f", "x.npy", None, "k.npz", 3, -1, False, executor="dask",
      scheduler="tcp://h:8786").endswith(
          "--executor dask --scheduler tcp://h:8786 --resume")


def test_core_runs_and_explains_without_dask(tmp_path):
  # A fresh interpreter in which `dask` and `distributed` cannot be
  # imported and no plugin but nt-dense is loaded.
  script = textwrap.dedent("""
      import sys
      sys.modules["dask"] = sys.modules["distributed"] = None
      import numpy as np
      import ntcore as nt
      from ntcore import stax
      from ntcore.parallel import executor
      fn = stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(1))[2]
      x = np.ones((5, 2))
      k = nt.batch(fn, 2, executor="local")(x, None, "nngp")
      assert np.allclose(k, fn(x, None, "nngp")), "local executor"
      try:
        nt.batch(fn, 2, executor="dask")
      except executor.ExecutorNotInstalledError as e:
        print(e)
      assert "distributed" not in sys.modules or not sys.modules["distributed"]
  """)
  env = dict(os.environ, NTCORE_LOAD_PLUGINS="nt-dense")
  result = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr
  assert "'dask' executor is provided by the nt-dask plugin" in result.stdout
