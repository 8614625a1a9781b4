"""`ntcore kernel MODEL X1 [X2] --out FILE`: click's CliRunner, plus real
subprocesses killed with SIGKILL, interrupted with SIGINT / SIGTERM, and
stopped by a file size limit half-way, then resumed with `--resume`."""

import json
import os
import re
import shlex
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
    assert sorted(out.files) == ["nngp", "ntcore_info", "ntk"]
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


def _start(path, args, sleep="0.3", prelude=""):
  env = dict(os.environ, PYTHONPATH=str(path), SLEEP=sleep)
  return subprocess.Popen(
      [sys.executable, "-c", prelude + "from ntcore.cli import main; main()",
       "kernel", *args], cwd=path, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)


def _wait_for_blocks(proc, store, n):
  deadline = time.monotonic() + 60
  while len(_block_files(store)) < n:
    assert proc.poll() is None, proc.communicate()
    assert time.monotonic() < deadline, "no blocks were written"
    time.sleep(0.05)


@pytest.mark.slow  # two subprocesses: ~5 s of imports each
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_says_what_was_kept_and_how_to_resume(workdir, sig):
  path, models = workdir
  np.save(path / "x1.npy", np.random.default_rng(1).normal(size=(12, 3)))
  args = [f"{models}:slow", "x1.npy", "--out", "k.npz", "--batch-size", "2",
          "--device-count", "0", "--no-progress"]
  proc = _start(path, args)
  store = str(path / "k.npz.blocks")
  try:
    _wait_for_blocks(proc, store, 3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
  finally:
    proc.kill()
  assert proc.returncode == 128 + sig
  done = len(_block_files(store))
  assert f"stopped by {signal.Signals(sig).name}" in err
  assert f"kept {done} of 21 blocks in {store_rel(store)}" in err
  assert "Traceback" not in err
  command = err.strip().splitlines()[-1].strip()
  assert command == ("ntcore kernel " + shlex.join(args[:-1])
                     + " --resume")
  resumed = CliRunner().invoke(cli.main, shlex.split(command)[1:])
  assert resumed.exit_code == 0, (resumed.output, repr(resumed.exception))
  assert f"21 blocks ({done} loaded, {21 - done} computed)" in resumed.output


def store_rel(store):
  return os.path.basename(store)


@pytest.mark.slow  # a subprocess: ~5 s of imports
def test_a_full_disk_is_one_line_saying_what_was_kept(workdir):
  path, models = workdir
  np.save(path / "x1.npy", np.random.default_rng(1).normal(size=(12, 3)))
  args = [f"{models}:erf", "x1.npy", "--out", "k.npz", "--batch-size", "4",
          "--device-count", "0"]

  # Files may grow to 2.5 kB: the blocks and manifest fit, the kernel file
  # (2 x 12 x 12 float64) does not; its write fails with EFBIG, as it would
  # with ENOSPC on a full disk.
  limit = ("import resource, signal; "
           "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
           "resource.setrlimit(resource.RLIMIT_FSIZE, (2500, 2500)); ")
  proc = _start(path, args, sleep="0", prelude=limit)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 1, err
  lines = err.strip().splitlines()
  assert len(lines) == 1 and "Traceback" not in err, err
  assert lines[0].startswith("Error: cannot write k.npz: File too large")
  assert "File too large" in lines[0]
  assert "kept 6 of 6 blocks in k.npz.blocks" in lines[0]
  assert lines[0].endswith("--resume")
  assert not (path / "k.npz").exists()
  assert not [n for n in os.listdir(path) if n.startswith(".tmp-")]
  resumed = _run(*args, "--resume")
  assert resumed.exit_code == 0, resumed.output
  assert "6 blocks (6 loaded, 0 computed)" in resumed.output


def test_out_equal_to_an_input_is_refused(workdir):
  path, models = workdir
  before = (path / "x1.npy").read_bytes()
  for out in ("x1.npy", "./x1.npy", str(path / "x1.npy")):
    result = _run(f"{models}:erf", "x1.npy", "--out", out, "--no-progress")
    assert result.exit_code == 1 and "is the input" in result.output
  result = _run(f"{models}:erf", "x1.npy", "x2.npy", "--out", "x2.npy")
  assert result.exit_code == 1 and "is the input 'x2.npy'" in result.output
  assert (path / "x1.npy").read_bytes() == before


def test_existing_file_not_written_by_ntcore_needs_force(workdir):
  path, models = workdir
  (path / "notes.npz").write_text("my notes")
  result = _run(f"{models}:erf", "x1.npy", "--out", "notes.npz")
  assert result.exit_code == 1 and "--force" in result.output
  assert (path / "notes.npz").read_text() == "my notes"
  forced = _run(f"{models}:erf", "x1.npy", "--out", "notes.npz", "--force")
  assert forced.exit_code == 0, forced.output
  # A kernel file ntcore wrote may be written again without --force.
  again = _run(f"{models}:erf", "x1.npy", "--out", "notes.npz")
  assert again.exit_code == 0, again.output


def test_resume_after_editing_the_model_is_refused(workdir):
  path, models = workdir
  from ntcore.parallel import _store  # pylint: disable=import-outside-toplevel
  from ntcore.parallel import batch  # pylint: disable=import-outside-toplevel
  # What a killed run of the model as it was (W_std=1.5) left behind.
  kernel_fn = stax.serial(stax.Dense(16, W_std=1.4, b_std=0.1), stax.Erf(),
                          stax.Dense(1, W_std=1.2))[2]
  batch(kernel_fn, 4, 0, store=_store.BlockStore(
      path / "k.npz.blocks", tag=f"{models}:erf"))(
          np.load(path / "x1.npy"), None, ("nngp", "ntk"))
  result = _run(f"{models}:erf", "x1.npy", "--out", "k.npz", "--batch-size",
                "4", "--device-count", "0", "--resume")
  assert result.exit_code == 1
  assert "the network" in result.output and "differs" in result.output
  assert len(result.output.strip().splitlines()) == 1


def test_kernel_info_reads_the_file_back(workdir):
  path, models = workdir
  assert _run(f"{models}:erf", "x1.npy", "x2.npy", "--out", "k.npz",
              "--batch-size", "4", "--no-progress").exit_code == 0
  info = CliRunner().invoke(cli.main, ["kernel-info", "k.npz"])
  assert info.exit_code == 0, info.output
  assert "nngp: float64 (9, 4)" in info.output
  assert f"model: {models}:erf" in info.output
  assert "3 computed, 0 loaded" in info.output
  as_json = CliRunner().invoke(cli.main, ["kernel-info", "k.npz", "--json"])
  assert json.loads(as_json.stdout)["inputs"]["x2"]["shape"] == [4, 3]
  bad = CliRunner().invoke(cli.main, ["kernel-info", "x1.npy"])
  assert bad.exit_code == 1 and "not an .npz" in bad.output
