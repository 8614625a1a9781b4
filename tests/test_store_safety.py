"""The block store never mixes computations nor uses a damaged block, and
several writers (threads of one test, real processes) can share one store."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ntcore as nt
from ntcore import stax
from ntcore.errors import BlockStoreError
from ntcore.parallel import BlockStore, _store
from ntcore.parallel._store import BlockStoreWarning

NET = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import ntcore as nt
from ntcore import stax
kernel_fn = stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Erf(),
                        stax.Dense(1))[2]
x = np.random.default_rng(0).normal(size=({n}, 3))
"""


def _net(w_std=1.5):
  return stax.serial(stax.Dense(8, W_std=w_std, b_std=0.1), stax.Erf(),
                     stax.Dense(1))[2]


@pytest.fixture(scope="module")
def x():
  return np.random.default_rng(0).normal(size=(7, 3))


def _python(code, *args, **kwargs):
  return subprocess.Popen(
      [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_store_of_another_network_is_refused(tmp_path, x):
  nt.batch(_net(1.5), 3, 0, store=tmp_path)(x, None, "nngp")
  with pytest.raises(BlockStoreError, match="the network .* differs"):
    nt.batch(_net(1.6), 3, 0, store=tmp_path)(x, None, "nngp")
  # The same hyper-parameters, built anew, are the same computation.
  batched = nt.batch(_net(1.5), 3, 0, store=tmp_path)
  batched(x, None, "nngp")
  assert batched.last_run["loaded"] == 6


def test_network_fingerprint_is_the_same_in_another_process(tmp_path):
  nt.batch(_net(), 3, 0, store=tmp_path / "here")(
      np.random.default_rng(0).normal(size=(7, 3)), None, "nngp")
  proc = _python(NET.format(n=7) + """
nt.batch(kernel_fn, 3, 0, store=sys.argv[1])(x, None, "nngp")
""", tmp_path / "there")
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err
  here, there = (json.loads((tmp_path / d / "manifest.json").read_text())
                 for d in ("here", "there"))
  assert len(here["network"]) == 64
  assert here == there


def _rewrite(path, **arrays):
  with np.load(path, allow_pickle=False) as data:
    stored = {k: data[k] for k in data.files}
  stored.update(arrays)
  with open(path, "wb") as f:
    np.savez(f, **stored)


def _truncate(path):
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


def _wrong_shape(path):
  leaf = np.zeros((3, 2))
  _rewrite(path, leaf0=leaf, checksum=np.asarray(_store.fingerprint([leaf])))


def _bad_checksum(path):
  with np.load(path, allow_pickle=False) as data:
    leaf = data["leaf0"].copy()
  leaf[0, 0] += 1e-9
  _rewrite(path, leaf0=leaf)  # the old checksum stays


def _wrong_dtype(path):
  leaf = np.zeros((3, 3), np.float32)
  _rewrite(path, leaf0=leaf, checksum=np.asarray(_store.fingerprint([leaf])))


@pytest.mark.parametrize("damage, why", [
    (_truncate, "not an .npz"),
    (lambda p: p.write_bytes(b""), "not an .npz"),
    (_wrong_shape, r"leaf0 is float64\[3, 2\], expected float64\[3, 3\]"),
    (_wrong_dtype, "leaf0 is float32"),
    (_bad_checksum, "checksum does not match"),
])
def test_damaged_block_is_computed_again_with_a_warning(tmp_path, x, damage,
                                                        why):
  kernel_fn = _net()
  ref = nt.batch(kernel_fn, 3, 0, store=tmp_path)(x, None, "nngp")
  damage(tmp_path / "p_0_1.npz")
  batched = nt.batch(kernel_fn, 3, 0, store=tmp_path)
  with pytest.warns(BlockStoreWarning, match=why):
    again = batched(x, None, "nngp")
  assert batched.last_run == dict(total=6, computed=1, loaded=5)
  np.testing.assert_array_equal(again, ref)
  # The block was written again, whole.
  assert BlockStore(tmp_path).load("p_0_1", 1) is not None


def test_only_temporaries_of_dead_writers_are_removed(tmp_path, x):
  kernel_fn = _net()
  nt.batch(kernel_fn, 3, 0, store=tmp_path)(x, None, "nngp")
  host = socket.gethostname()
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  live = tmp_path / f".tmp-{host}-{os.getpid()}-abc123"
  gone = tmp_path / f".tmp-{host}-{int(dead.stdout)}-abc123"
  for path in (live, gone):
    path.write_bytes(b"partial")
  nt.batch(kernel_fn, 3, 0, store=tmp_path)(x, None, "nngp")
  assert live.exists() and not gone.exists()


def test_two_processes_fill_one_store_at_once(tmp_path):
  n = 24
  code = NET.format(n=n) + """
import time
def slow(x1, x2=None, get=None):
  time.sleep(0.01)
  return kernel_fn(x1, x2, get)
np.save(sys.argv[2], nt.batch(slow, 2, 0, store=sys.argv[1])(x, None, "nngp"))
"""
  store = tmp_path / "blocks"
  procs = [_python(code, store, tmp_path / f"k{i}.npy") for i in range(2)]
  for proc in procs:
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
  ref = _net()(np.random.default_rng(0).normal(size=(n, 3)), None, "nngp")
  for i in range(2):
    np.testing.assert_allclose(np.load(tmp_path / f"k{i}.npy"), ref,
                               rtol=1e-12)
  names = os.listdir(store)
  assert sum(name.endswith(".npz") for name in names) == 12 * 13 // 2
  assert not [name for name in names if name.startswith(".tmp-")]
  batched = nt.batch(_net(), 2, 0, store=store)
  np.testing.assert_allclose(batched(
      np.random.default_rng(0).normal(size=(n, 3)), None, "nngp"), ref,
                             rtol=1e-12)
  assert batched.last_run["computed"] == 0


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600),
                                         (0o002, 0o664)])
def test_files_respect_the_umask(tmp_path, umask, mode):
  old = os.umask(umask)
  try:
    _store.atomic_write(str(tmp_path / "f"), lambda f: f.write(b"x"))
  finally:
    os.umask(old)
  assert (tmp_path / "f").stat().st_mode & 0o777 == mode
