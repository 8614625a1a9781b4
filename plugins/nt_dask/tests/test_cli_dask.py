"""`ntcore kernel ... --executor dask --workers 2` as a real subprocess: the
client (with its local cluster) SIGKILLed mid-run resumes with `--resume`,
skipping the blocks its workers finished, and the kernel file equals the
in-process result bit for bit."""

import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import ntcore as nt
from ntcore import stax

MODELS = textwrap.dedent("""
    import os
    import time
    from ntcore import stax

    def fc():
      return stax.serial(stax.Dense(16, W_std=1.4, b_std=0.1), stax.Relu(),
                         stax.Dense(1, W_std=1.2))

    def slow():
      # fc, with SLEEP more seconds per block: the kill lands mid-run.
      init_fn, apply_fn, kernel_fn = fc()

      def slow_kernel_fn(x1, x2=None, get=None, **kwargs):
        time.sleep(float(os.environ.get("SLEEP", "0")))
        return kernel_fn(x1, x2, get, **kwargs)

      return init_fn, apply_fn, slow_kernel_fn
""")

NTCORE = [sys.executable, "-c", "from ntcore.cli import main; main()"]


@pytest.mark.slow
def test_killed_client_resumes_skipping_finished_blocks(tmp_path):
  (tmp_path / "dask_models.py").write_text(MODELS)
  x = np.random.default_rng(0).standard_normal((15, 4))
  np.save(tmp_path / "x.npy", x)
  args = ["kernel", "dask_models:slow", "x.npy", "--out", "k.npz",
          "--batch-size", "3", "--executor", "dask", "--workers", "2"]
  env = dict(os.environ, SLEEP="0.4", PYTHONPATH=os.pathsep.join(
      [str(tmp_path)] + sys.path))
  store = tmp_path / "k.npz.blocks"
  # A session of its own: the kill takes the client and its cluster's
  # processes at once, as losing the client's node would.
  log = tmp_path / "killed.log"
  start = time.time()
  with open(log, "wb") as out:
    proc = subprocess.Popen(NTCORE + args, cwd=tmp_path, env=env,
                            start_new_session=True, stdout=out,
                            stderr=subprocess.STDOUT)
  try:
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and (
        len(list(store.glob("*.npz"))) < 3):
      time.sleep(0.05)
    assert proc.poll() is None, log.read_text()
  finally:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
  print(f"killed after {time.time() - start:.1f} s")
  kept = {p.stem for p in store.glob("*.npz")}
  assert 3 <= len(kept) < 15, kept  # 5 + 10 blocks in all
  resumed = subprocess.run(NTCORE + args + ["--resume"], cwd=tmp_path,
                           env=dict(env, SLEEP="0"), capture_output=True,
                           text=True, timeout=300, check=False)
  assert resumed.returncode == 0, resumed.stderr
  print(f"resumed after {time.time() - start:.1f} s")
  assert "nt-dask: " in resumed.stderr and "on 2 workers" in resumed.stderr
  loaded = int(resumed.stderr.split("blocks (")[1].split(" loaded")[0])
  assert loaded >= len(kept)
  assert f"15 blocks ({loaded} loaded, {15 - loaded} computed)" in \
      resumed.stderr
  assert not store.exists()
  k = nt.load_kernel(tmp_path / "k.npz")
  assert k.info["blocks"]["executor"] == "dask"
  want = nt.batch(stax.serial(stax.Dense(16, W_std=1.4, b_std=0.1),
                              stax.Relu(), stax.Dense(1, W_std=1.2))[2],
                  3, 0)(x, None, ("nngp", "ntk"))  # concrete blocks, as workers
  np.testing.assert_array_equal(k.nngp, np.asarray(want.nngp))
  np.testing.assert_array_equal(k.ntk, np.asarray(want.ntk))


def test_resume_line_keeps_the_executor_options():
  from ntcore.parallel import _command  # pylint: disable=import-outside-toplevel
  line = _command.resume_command("m:f", "x.npy", None, "k.npz", 3, -1, False,
                                 executor="dask", workers=2)
  assert shlex.split(line)[-5:] == ["--executor", "dask", "--workers", "2",
                                    "--resume"]
