"""`KernelOperator`: one interface over kernels in memory, on disk, computed.

Every source is checked against the dense kernel it stands for (products,
diagonal, rows, columns, the whole array), and the on-disk ones are solved
by `gp_inference(..., solver="cg")` to the dense answer. The last test
solves a kernel stored on disk in a subprocess and bounds that process's
peak memory far below the size of the kernel.
"""

import collections
import os
import subprocess
import sys
import textwrap
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

import ntcore as nt
from ntcore import predict
from ntcore.errors import BlockStoreError, ShapeError
from ntcore.kernel_file import KernelFileError, save_kernel

KernelLike = collections.namedtuple("KernelLike", ["nngp", "ntk"])


def kernel_fn(x1, x2=None, get=None):
  """A traceable kernel pair: RBF as the NNGP, RBF + linear as the NTK."""
  x2 = x1 if x2 is None else x2
  sq = jnp.sum((x1[:, None, :] - x2[None, :, :]) ** 2, axis=-1)
  nngp = jnp.exp(-sq / 2.)
  out = KernelLike(nngp, nngp + x1 @ x2.T / x1.shape[1] + 0.5)
  return getattr(out, get) if isinstance(get, str) else out


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  return rng.standard_normal((50, 3)), rng.standard_normal((7, 3))


@pytest.fixture(scope="module")
def store(data, tmp_path_factory):
  """A finished block store of 50 examples in ragged blocks of 16."""
  path = tmp_path_factory.mktemp("store") / "k.blocks"
  nt.batch(kernel_fn, 16, store=str(path), progress=False)(
      data[0], None, ("nngp", "ntk"))
  return str(path)


def operators(data, store, tmp_path):
  x = data[0]
  k = np.asarray(kernel_fn(x, None, "ntk"))
  path = str(tmp_path / "k.npz")
  save_kernel(path, {"nngp": np.asarray(kernel_fn(x, None, "nngp")),
                     "ntk": k}, {"model": "test"})
  return k, {
      "array": predict.KernelOperator.from_array(k, panel=7),
      "store": predict.KernelOperator.from_store(store, "ntk"),
      "file": predict.KernelOperator.from_file(path, "ntk", panel=9),
      "kernel_fn": predict.KernelOperator.from_kernel_fn(kernel_fn, x, "ntk",
                                                         panel=11),
  }


def test_every_source_is_the_same_operator(data, store, tmp_path):
  k, ops = operators(data, store, tmp_path)
  rng = np.random.default_rng(1)
  v, v1 = rng.standard_normal((50, 4)), rng.standard_normal(50)
  index = [49, 0, 17, 16, 33]
  for name, op in ops.items():
    assert op.shape == (50, 50) and op.size == 50, name
    np.testing.assert_allclose(op @ v, k @ v, rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(op.matmul(v1), k @ v1, rtol=1e-12)
    # The store's blocks and kernel_fn's panels are computed on other batch
    # shapes than k: equal to round-off, not bit for bit.
    close = dict(rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(op.diagonal(), np.diag(k), **close)
    np.testing.assert_allclose(op.rows(index), k[index], **close)
    np.testing.assert_allclose(op.columns(index), k[:, index], **close)
    np.testing.assert_allclose(op.to_array(), k, **close)
    assert (op @ v).dtype == np.float64


def test_sample_axes_beyond_the_batch(tmp_path):
  rng = np.random.default_rng(2)
  a = rng.standard_normal((12, 12))
  k4 = np.einsum("ab,cd->abcd", a @ a.T, np.array([[2., .5], [.5, 1.]]))
  k2 = np.asarray(predict.KernelOperator.from_array(k4).to_array())
  np.testing.assert_array_equal(k2, k4)  # round trip through (P, P)
  path = str(tmp_path / "k4.npz")
  np.savez(path, ntk=k4)
  ops = [predict.KernelOperator.from_array(k4, panel=5),
         predict.KernelOperator.from_file(path, panel=5)]
  y = rng.standard_normal((12, 2, 3))
  dense = predict.gp_inference(k4, y, 1e-2, trace_axes=(-1,))
  k_td = k4[:4]
  for op in ops:
    assert op.shape == (12, 12, 2, 2) and op.size == 24
    np.testing.assert_array_equal(op.to_array(), k4)
    np.testing.assert_allclose(op.diagonal(), np.diagonal(
        k4.transpose(0, 2, 1, 3).reshape(24, 24)))
    cg = predict.gp_inference(op, y, 1e-2, solver="cg")
    np.testing.assert_allclose(cg("ntk", k_td), dense("ntk", k_td),
                               rtol=1e-7)


def test_gp_inference_on_the_store_equals_the_dense_posterior(data, store):
  x, x_test = data
  y = np.sin(x[:, :2])
  train = KernelLike(predict.KernelOperator.from_store(store, "nngp"),
                     predict.KernelOperator.from_store(store, "ntk"))
  td, tt = kernel_fn(x_test, x), kernel_fn(x_test, None)
  cg_fn = predict.gp_inference(train, y, 1e-3)  # operators: CG by default
  cg = cg_fn(("nngp", "ntk"), td, tt)
  dense = predict.gp_inference(kernel_fn(x, None), y, 1e-3)(("nngp", "ntk"),
                                                           td, tt)
  for g in ("nngp", "ntk"):
    for a, b in zip(getattr(cg, g), getattr(dense, g)):
      assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(b))
  assert cg_fn.cg_records
  mse = predict.gradient_descent_mse(train.ntk, y, diag_reg=1e-3)
  np.testing.assert_allclose(
      mse(None, None, 0., td.ntk), dense.ntk.mean, rtol=1e-6, atol=1e-9)
  # solver="dense" assembles the operator and gives the dense answer.
  assembled = predict.gp_inference(train, y, 1e-3, solver="dense")
  # (The store's blocks equal kernel_fn(x, None) to round-off only.)
  np.testing.assert_allclose(assembled("ntk", td), dense.ntk.mean,
                             rtol=1e-9, atol=1e-12)
  assert assembled.cg_records == []


def test_store_errors_name_the_fix(data, store, tmp_path):
  with pytest.raises(BlockStoreError, match="no block store"):
    predict.KernelOperator.from_store(tmp_path / "nothing")
  with pytest.raises(BlockStoreError, match="get=\\('nngp', 'ntk'\\)"):
    predict.KernelOperator.from_store(store, "cov1")
  cross = str(tmp_path / "cross")
  nt.batch(kernel_fn, 16, store=cross, progress=False)(data[0], data[0],
                                                      "ntk")
  with pytest.raises(BlockStoreError, match="x2=None"):
    predict.KernelOperator.from_store(cross)
  partial = str(tmp_path / "partial")
  nt.batch(kernel_fn, 16, store=partial, progress=False)(data[0], None,
                                                        "ntk")
  os.remove(os.path.join(partial, "p_1_3.npz"))
  with pytest.raises(BlockStoreError, match="unfinished.*1 of 10.*again"):
    predict.KernelOperator.from_store(partial)


def test_file_errors_name_the_fix(tmp_path):
  k = np.eye(4)
  np.savez_compressed(tmp_path / "c.npz", ntk=k)
  with pytest.raises(KernelFileError, match="numpy.savez,"):
    predict.KernelOperator.from_file(tmp_path / "c.npz")
  np.savez(tmp_path / "k.npz", nngp=k)
  with pytest.raises(KernelFileError, match="no array 'ntk'.*'nngp'"):
    predict.KernelOperator.from_file(tmp_path / "k.npz")
  (tmp_path / "x.npz").write_text("not a zip")
  with pytest.raises(KernelFileError, match="not an .npz"):
    predict.KernelOperator.from_file(tmp_path / "x.npz")
  np.savez(tmp_path / "r.npz", ntk=np.ones((4, 3)))
  with pytest.raises(ShapeError, match="square training kernel"):
    predict.KernelOperator.from_file(tmp_path / "r.npz")
  assert zipfile.is_zipfile(tmp_path / "k.npz")


N, BLOCK = 8000, 500
# The kernel is N^2 float64 = 488 MiB; the solve may add at most 48 MiB to
# the peak resident memory of the process (10x less than the kernel):
# blocks of 2 MiB, a rank-128 preconditioner (8 MiB, and as much for its
# SVD), rows of the pivots (8 MiB), a few (N, 2) vectors.
BOUND_MB = 48

# Peak memory from /proc: `ru_maxrss` would not do, as Linux carries it over
# `fork` and `exec` from the parent (which holds the whole kernel here).
# Writing 5 to clear_refs resets the peak (VmHWM) to the current size.
# Both scripts start with this: float64 JAX, and `kb`, a /proc/self/status
# field in MiB.
_PREAMBLE = textwrap.dedent("""
    import sys, json
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import ntcore as nt
    from ntcore import predict
    def kb(key):
      with open("/proc/self/status") as f:
        line = next(l for l in f if l.startswith(key + ":"))
      return int(line.split()[1]) / 1024
""")
_SOLVE = _PREAMBLE + textwrap.dedent("""
    rng = np.random.default_rng(0)
    y = rng.standard_normal((%d, 2))
    k_td = rng.standard_normal((5, %d))
    op = predict.KernelOperator.from_store(sys.argv[1], "nngp")
    op.diagonal()
    # The same steps on a small kernel first: BLAS and LAPACK allocate their
    # buffers on first use, whatever the size.
    a = rng.standard_normal((300, 300))
    predict.gp_inference(a @ a.T, y[:300], 0.1, solver="cg")("nngp", a[:5])
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    before = kb("VmRSS")
    fn = predict.gp_inference(op, y, 0.1, solver=predict.CG(rank=128))
    mean = fn("nngp", k_td)
    r = fn.cg_records[0]
    print(json.dumps(dict(before=before, after=kb("VmHWM"), it=r.iterations,
                          res=float(r.residual.max()),
                          finite=bool(np.all(np.isfinite(mean))))))
""") % (N, N)


# Fills the store with `assemble=False`: the process holds blocks, never the
# kernel. The kernel is RBF at length scale 3 (`kernel_fn`'s NNGP of x / 3):
# a fast-decaying spectrum, so that the solve takes few passes over the disk.
_FILL = _PREAMBLE + textwrap.dedent("""
    def smooth_kernel_fn(x1, x2=None, get=None):
      x1 = x1 / 3.
      x2 = x1 if x2 is None else x2 / 3.
      return jnp.exp(-jnp.sum((x1[:, None] - x2[None]) ** 2, axis=-1) / 2.)
    x = np.random.default_rng(3).standard_normal((%d, 3))
    def fill(path, n):
      return nt.batch(smooth_kernel_fn, %d, store=path, progress=False,
                      assemble=False)(x[:n], None, "nngp")
    fill(sys.argv[1] + ".warm", 2 * %d)  # compiles the same block programs
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    before = kb("VmRSS")
    out = fill(sys.argv[1], len(x))
    print(json.dumps(dict(before=before, after=kb("VmHWM"), none=out is None)))
""") % (N, BLOCK, BLOCK)


def _stats(script: str, path: str) -> dict:
  out = subprocess.run([sys.executable, "-c", script, path], check=True,
                       capture_output=True, text=True, timeout=600)
  import json  # pylint: disable=import-outside-toplevel
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"),
                    reason="peak memory is read from Linux's /proc")
def test_a_store_on_disk_is_written_and_solved_in_bounded_memory(tmp_path):
  kernel_mb = N * N * 8 / 2**20
  assert kernel_mb > 10 * BOUND_MB
  path = str(tmp_path / "big.blocks")
  written = _stats(_FILL, path)
  assert written["none"]
  assert written["after"] - written["before"] <= BOUND_MB, written
  stats = _stats(_SOLVE, path)
  assert stats["finite"] and stats["res"] <= 1e-10 and stats["it"] >= 2
  assert stats["after"] - stats["before"] <= BOUND_MB, stats


def test_assemble_false_only_fills_the_store(data, store, tmp_path):
  path = str(tmp_path / "only.blocks")
  batched = nt.batch(kernel_fn, 16, store=path, progress=False,
                     assemble=False)
  assert batched(data[0], None, ("nngp", "ntk")) is None
  assert batched.last_run == dict(total=10, computed=10, loaded=0)
  for get in ("nngp", "ntk"):
    np.testing.assert_array_equal(
        predict.KernelOperator.from_store(path, get).to_array(),
        predict.KernelOperator.from_store(store, get).to_array())
  # Run again: every block is found in the store, none is computed.
  assert batched(data[0], None, ("nngp", "ntk")) is None
  assert batched.last_run == dict(total=10, computed=0, loaded=10)
  with pytest.raises(nt.errors.BatchError, match="needs store="):
    nt.batch(kernel_fn, 16, assemble=False)
  with pytest.raises(nt.errors.BatchError, match="batch_size > 0"):
    nt.batch(kernel_fn, 0, store=path, assemble=False)
