"""The block store of `nt.batch(..., store=DIR)`: resume, manifest, files.

The kill -9 of a real run is in test_cli_kernel.py; here blocks are removed
by hand, which leaves the store as a kill between two blocks does.
"""

import json
import os

import numpy as np
import pytest

import ntcore as nt
from ntcore import stax
from ntcore.errors import BlockStoreError
from ntcore.parallel import BlockStore
from ntcore.parallel._store import BlockStoreWarning


@pytest.fixture(scope="module")
def kernel_fn():
  return stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Erf(),
                     stax.Dense(1))[2]


@pytest.fixture(scope="module")
def x():
  return np.random.default_rng(0).normal(size=(7, 3))


def _blocks(path):
  return sorted(n for n in os.listdir(path) if n.endswith(".npz"))


def test_resume_computes_only_missing_blocks(tmp_path, kernel_fn, x):
  store = tmp_path / "blocks"
  calls = []

  def counted(x1, x2=None, get=None, **kwargs):
    calls.append(x2 is None)
    return kernel_fn(x1, x2, get, **kwargs)

  first = nt.batch(counted, 2, 0, store=store)(x, None, ("nngp", "ntk"))
  files = _blocks(store)
  assert len(files) == 10  # 4 diagonal + 6 above it
  for name in files[::3]:  # as if killed before these were written
    os.remove(store / name)
  missing = len(files[::3])
  calls.clear()
  batched = nt.batch(counted, 2, 0, store=store)
  again = batched(x, None, ("nngp", "ntk"))
  assert batched.last_run == dict(total=10, computed=missing,
                                  loaded=10 - missing)
  # eval_shape traces each kind once more (the network's fingerprint
  # reuses JAX's cached trace); only `missing` blocks ran.
  assert len(calls) == missing + 2
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(again.ntk, kernel_fn(x, None, "ntk"),
                             rtol=1e-12)


def test_manifest_records_the_computation(tmp_path, kernel_fn, x):
  nt.batch(kernel_fn, 3, 0, store=BlockStore(tmp_path, tag="erf net"))(
      x, None, "nngp")
  manifest = json.loads((tmp_path / "manifest.json").read_text())
  assert (manifest["n1"], manifest["n2"], manifest["b1"]) == (7, 7, 3)
  assert manifest["symmetric"] and manifest["mirror"]
  assert manifest["get"] == "nngp" and manifest["tag"] == "erf net"
  assert len(manifest["inputs"]) == len(manifest["network"]) == 64  # sha256
  assert manifest["total"] == 6 and manifest["version"] == nt.__version__
  assert manifest["dtype"] == {"inputs": ["float64"], "blocks": ["float64"]}
  assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
  with np.load(tmp_path / "d_0_0.npz", allow_pickle=False) as block:
    assert block["leaf0"].shape == (3, 3)


@pytest.mark.parametrize("change, what", [
    (dict(x=lambda x: x + 1), "inputs"),
    (dict(batch_size=3), "b1"),
    (dict(get="ntk"), "get"),
    (dict(x2=lambda x: x[:4]), "symmetric"),
])
def test_other_computation_in_store_is_an_error(tmp_path, kernel_fn, x,
                                                change, what):
  nt.batch(kernel_fn, 2, 0, store=tmp_path)(x, None, "nngp")
  x_new = change.get("x", lambda x: x)(x)
  x2 = change["x2"](x) if "x2" in change else None
  batched = nt.batch(kernel_fn, change.get("batch_size", 2), 0,
                     store=tmp_path)
  with pytest.raises(BlockStoreError, match=f"{what} differs") as e:
    batched(x_new, x2, change.get("get", "nngp"))
  assert "delete" in str(e.value)


def test_unreadable_block_is_computed_again(tmp_path, kernel_fn, x):
  first = nt.batch(kernel_fn, 4, 0, store=tmp_path)(x, None, "nngp")
  (tmp_path / "p_0_1.npz").write_bytes(b"not a zip")
  batched = nt.batch(kernel_fn, 4, 0, store=tmp_path)
  with pytest.warns(BlockStoreWarning, match="p_0_1.npz is damaged"):
    again = batched(x, None, "nngp")
  assert batched.last_run == dict(total=3, computed=1, loaded=2)
  np.testing.assert_array_equal(first, again)
  with np.load(tmp_path / "p_0_1.npz", allow_pickle=False) as block:
    assert block["leaf0"].shape == (4, 4)


def test_leftover_temporary_files_are_removed(tmp_path, kernel_fn, x):
  nt.batch(kernel_fn, 4, 0, store=tmp_path)(x, None, "nngp")
  (tmp_path / ".tmp-half-written").write_bytes(b"partial")
  nt.batch(kernel_fn, 4, 0, store=tmp_path)(x, None, "nngp")
  assert not (tmp_path / ".tmp-half-written").exists()
