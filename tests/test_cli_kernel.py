"""`ntcore kernel MODEL X1 [X2] --out FILE`: click's CliRunner, plus one real
subprocess killed with SIGKILL half-way and resumed with `--resume`."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from click.testing import CliRunner

from ntcore import cli
from ntcore import stax

MODELS = textwrap.dedent("""
    import os
    import time
    from ntcore import stax

    def erf():
      return stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Erf(),
                         stax.Dense(1, W_std=1.2))

    def slow():
      # The same network; in the killed subprocess every block takes
      # SLEEP seconds, so that it dies with some blocks done and others not.
      init_fn, apply_fn, kernel_fn = erf()

      def slow_kernel_fn(x1, x2=None, get=None, **kwargs):
        time.sleep(float(os.environ.get("SLEEP", "0")))
        return kernel_fn(x1, x2, get, **kwargs)

      return init_fn, apply_fn, slow_kernel_fn

    def not_a_triple():
      return 42
""")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
  """A directory holding `models_<test>.py` and inputs, as the cwd."""
  name = "models_" + re.sub(r"\W", "_", os.environ.get(
      "PYTEST_CURRENT_TEST", "x").split(" ")[0].split("::")[-1])
  (tmp_path / f"{name}.py").write_text(MODELS)
  rng = np.random.default_rng(0)
  np.save(tmp_path / "x1.npy", rng.normal(size=(9, 3)))
  np.save(tmp_path / "x2.npy", rng.normal(size=(4, 3)))
  monkeypatch.chdir(tmp_path)
  return tmp_path, name


def _run(*args):
  return CliRunner().invoke(cli.main, ["kernel", *args])


def test_writes_nngp_and_ntk(workdir):
  path, models = workdir
  result = _run(f"{models}:erf", "x1.npy", "x2.npy", "--out", "k.npz",
                "--batch-size", "4", "--no-progress")
  assert result.exit_code == 0, result.output
  assert "3 blocks (0 loaded, 3 computed)" in result.output
  _, _, kernel_fn = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1),
                                stax.Erf(), stax.Dense(1, W_std=1.2))
  x1, x2 = np.load(path / "x1.npy"), np.load(path / "x2.npy")
  ref = kernel_fn(x1, x2, ("nngp", "ntk"))
  with np.load(path / "k.npz", allow_pickle=False) as out:
    assert sorted(out.files) == ["nngp", "ntk"]
    np.testing.assert_allclose(out["nngp"], ref.nngp, rtol=1e-12)
    np.testing.assert_allclose(out["ntk"], ref.ntk, rtol=1e-12)
  assert not (path / "k.npz.blocks").exists()


@pytest.mark.parametrize("args, match", [
    (["nocolon", "x1.npy"], "module:function"),
    (["no_such_module:f", "x1.npy"], "cannot import module"),
    (["{models}:missing", "x1.npy"], "has no function 'missing'"),
    (["{models}:not_a_triple", "x1.npy"], "not a stax triple"),
    (["{models}:erf", "absent.npy"], "does not exist"),
    (["{models}:erf", "vector.npy"], "batch axis and a channel axis"),
    (["{models}:erf", "garbage.npy"], "not a readable .npy"),
    (["{models}:erf", "x1.npy", "wide.npy"], "may differ only along"),
])
def test_clear_errors(workdir, args, match):
  path, models = workdir
  np.save(path / "vector.npy", np.ones(5))
  np.save(path / "wide.npy", np.ones((4, 7)))
  (path / "garbage.npy").write_bytes(b"not an array")
  args = [a.format(models=models) for a in args]
  result = _run(*args, "--out", "k.npz", "--no-progress")
  assert result.exit_code == 1
  assert "Error:" in result.output and match in result.output
  assert "Traceback" not in result.output


def test_unfinished_store_needs_resume(workdir):
  path, models = workdir
  (path / "k.npz.blocks").mkdir()
  result = _run(f"{models}:erf", "x1.npy", "--out", "k.npz")
  assert result.exit_code == 1 and "--resume" in result.output


def test_resume_with_other_inputs_is_an_error(workdir):
  path, models = workdir
  from ntcore.parallel import _command  # pylint: disable=import-outside-toplevel
  store = _command.store_path(str(path / "k.npz"))
  np.save(path / "other.npy", np.ones((9, 3)))
  # A manifest as a killed run over x1.npy leaves it.
  from ntcore.parallel import batch  # pylint: disable=import-outside-toplevel
  from ntcore.parallel._store import BlockStore  # pylint: disable=import-outside-toplevel
  kernel_fn = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Erf(),
                          stax.Dense(1, W_std=1.2))[2]
  batch(kernel_fn, 4, 0, store=BlockStore(store, tag=f"{models}:erf"))(
      np.load(path / "x1.npy"), None, ("nngp", "ntk"))
  result = _run(f"{models}:erf", "other.npy", "--out", "k.npz",
                "--batch-size", "4", "--resume", "--device-count", "0")
  assert result.exit_code == 1
  assert "different computation: inputs differs" in result.output
  assert "delete" in result.output


def _block_files(store):
  return sorted(n for n in os.listdir(store) if n.endswith(".npz")
                ) if os.path.isdir(store) else []


@pytest.mark.slow  # a subprocess: ~5 s of imports, then 0.3 s per block
def test_killed_run_resumes_and_recomputes_only_missing_blocks(workdir):
  path, models = workdir
  np.save(path / "x1.npy", np.random.default_rng(1).normal(size=(12, 3)))
  args = [f"{models}:slow", "x1.npy", "--out", "k.npz", "--batch-size", "2",
          "--device-count", "0", "--no-progress"]
  env = dict(os.environ, PYTHONPATH=str(path), SLEEP="0.3")
  proc = subprocess.Popen(
      [sys.executable, "-c", "from ntcore.cli import main; main()", "kernel",
       *args], cwd=path, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE)
  store = str(path / "k.npz.blocks")
  deadline = time.monotonic() + 60
  try:
    while len(_block_files(store)) < 4:
      assert proc.poll() is None, proc.communicate()
      assert time.monotonic() < deadline, "no blocks were written"
      time.sleep(0.05)
  finally:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
  done = _block_files(store)
  total = 6 * 7 // 2  # 12 / 2 = 6 row blocks, on and above the diagonal
  assert 4 <= len(done) < total
  assert not os.path.exists(path / "k.npz")

  resumed = _run(*args, "--resume")
  assert resumed.exit_code == 0, resumed.output
  assert (f"{total} blocks ({len(done)} loaded, {total - len(done)} computed)"
          in resumed.output)
  uninterrupted = _run(*[a if a != "k.npz" else "ref.npz" for a in args])
  assert uninterrupted.exit_code == 0, uninterrupted.output
  with np.load(path / "k.npz") as out, np.load(path / "ref.npz") as ref:
    for name in ("nngp", "ntk"):
      np.testing.assert_array_equal(out[name], ref[name])
  assert not os.path.exists(store)
