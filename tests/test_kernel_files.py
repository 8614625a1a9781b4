"""Kernel files: what `ntcore kernel` writes, read back with
`ntcore.load_kernel` (no pickle), with the mode the umask gives."""

import os

import numpy as np
import pytest
from click.testing import CliRunner

import ntcore
from ntcore import cli, kernel_file, stax
from ntcore.kernel_file import KernelFileError

MODELS = """
from ntcore import stax

def erf():
  return stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Erf(),
                     stax.Dense(1, W_std=1.2))
"""


def test_round_trip(tmp_path):
  arrays = {"nngp": np.arange(6.).reshape(2, 3), "ntk": np.eye(2, 3)}
  info = {"model": "m:f", "blocks": {"computed": 3, "loaded": 1}}
  path = tmp_path / "k.npz"
  kernel_file.save_kernel(path, arrays, info)
  k = ntcore.load_kernel(path)
  assert sorted(k.arrays) == ["nngp", "ntk"]
  np.testing.assert_array_equal(k.nngp, arrays["nngp"])
  np.testing.assert_array_equal(k.ntk, arrays["ntk"])
  assert k.info == dict(info, format=kernel_file.FORMAT)
  assert kernel_file.written_by_ntcore(path)
  with pytest.raises(AttributeError, match="no array 'cov1'"):
    _ = k.cov1


def test_cli_output_records_how_it_was_made(tmp_path, monkeypatch):
  (tmp_path / "models_files.py").write_text(MODELS)
  rng = np.random.default_rng(0)
  x1, x2 = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
  np.save(tmp_path / "x1.npy", x1)
  np.save(tmp_path / "x2.npy", x2)
  monkeypatch.chdir(tmp_path)
  old = os.umask(0o022)
  try:
    result = CliRunner().invoke(cli.main, [
        "kernel", "models_files:erf", "x1.npy", "x2.npy", "--out", "k.npz",
        "--batch-size", "3", "--device-count", "0"])
  finally:
    os.umask(old)
  assert result.exit_code == 0, result.output
  assert (tmp_path / "k.npz").stat().st_mode & 0o777 == 0o644
  k = ntcore.load_kernel(tmp_path / "k.npz")
  ref = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Erf(),
                    stax.Dense(1, W_std=1.2))[2](x1, x2, ("nngp", "ntk"))
  np.testing.assert_allclose(k.ntk, ref.ntk, rtol=1e-12)
  info = k.info
  assert info["model"] == "models_files:erf"
  assert info["ntcore_version"] == ntcore.__version__
  from ntcore.parallel import _store  # pylint: disable=import-outside-toplevel
  assert info["inputs"]["x1"]["sha256"] == _store.fingerprint([x1])
  assert info["inputs"]["x2"]["shape"] == [5, 3]
  blocks = info["blocks"]
  assert (blocks["total"], blocks["computed"], blocks["loaded"]) == (6, 6, 0)
  assert blocks["block_shape"] == [3, 3] and blocks["batch_size"] == 3
  assert len(blocks["store_fingerprint"]) == 64
  assert len(blocks["network_fingerprint"]) == 64


def test_unreadable_files_are_clear_errors(tmp_path):
  with pytest.raises(KernelFileError, match="does not exist"):
    ntcore.load_kernel(tmp_path / "absent.npz")
  (tmp_path / "text.npz").write_text("hello")
  with pytest.raises(KernelFileError, match="not an .npz"):
    ntcore.load_kernel(tmp_path / "text.npz")
  np.savez(tmp_path / "pickled.npz", a=np.array([{"x": 1}], dtype=object))
  with pytest.raises(KernelFileError, match="never pickles"):
    ntcore.load_kernel(tmp_path / "pickled.npz")
  with pytest.raises(KernelFileError, match="object arrays need pickle"):
    kernel_file.save_kernel(tmp_path / "o.npz",
                            {"a": np.array([None], dtype=object)}, {})


def test_an_npz_from_elsewhere_has_no_info(tmp_path):
  np.savez(tmp_path / "plain.npz", nngp=np.ones((2, 2)))
  k = ntcore.load_kernel(tmp_path / "plain.npz")
  assert k.info == {} and k.nngp.shape == (2, 2)
  assert not kernel_file.written_by_ntcore(tmp_path / "plain.npz")
