"""What `ntcore kernel MODEL X1 [X2] --out FILE` does, apart from click.

`MODEL` is `module:function`; `function()` returns a stax triple
`(init_fn, apply_fn, kernel_fn)`. The NNGP and NTK of `X1` (and `X2`) are
computed with `batch` and written to `FILE` (`.npz`, keys `nngp`, `ntk`).
Finished blocks go to `FILE.blocks/` while the run lasts, so a killed run
continues with `--resume`; the directory is removed once `FILE` is written.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from typing import Any, Callable, Optional

import numpy as np

from ntcore.errors import BlockStoreError, InputFileError, ModelLoadError
from ntcore.parallel import _store
from ntcore.parallel.batch import batch


def store_path(out: str) -> str:
  """The block store directory beside `out`."""
  return os.fspath(out) + ".blocks"


def load_model(spec: str) -> Callable[..., Any]:
  """The `kernel_fn` of the stax triple returned by `module:function`.

  The current directory is searched first, then `PYTHONPATH`.

  Raises:
    ModelLoadError: `spec` is malformed, the module or function is missing,
      or the function does not return `(init_fn, apply_fn, kernel_fn)`.
  """
  module_name, sep, attr = spec.partition(":")
  if not sep or not module_name or not attr:
    raise ModelLoadError(
        f"MODEL {spec!r} is not of the form module:function. Name a Python "
        f"function returning a stax triple, e.g. my_models:wide_resnet for "
        f"def wide_resnet() in my_models.py in the current directory.")
  if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ModelLoadError(
        f"MODEL {spec!r}: cannot import module {module_name!r} ({e}). Run "
        f"from the directory holding {module_name.replace('.', '/')}.py, or "
        f"add its directory to PYTHONPATH.") from e
  fn = getattr(module, attr, None)
  if not callable(fn):
    raise ModelLoadError(
        f"MODEL {spec!r}: module {module_name!r} has no function {attr!r}"
        f"{'' if fn is None else f' (it is a {type(fn).__name__})'}. Name a "
        f"function that returns stax.serial(...).")
  triple = fn()
  if (not isinstance(triple, tuple) or len(triple) != 3
      or not callable(triple[2])):
    raise ModelLoadError(
        f"MODEL {spec!r} returned {type(triple).__name__}, not a stax triple "
        f"(init_fn, apply_fn, kernel_fn). Return e.g. stax.serial(...) "
        f"itself.")
  return triple[2]


def load_input(path: str, name: str) -> np.ndarray:
  """A `.npy` array of inputs, at least 2-d.

  Raises:
    InputFileError: missing or unreadable file, not an array of numbers, or
      fewer than 2 axes.
  """
  if not os.path.isfile(path):
    raise InputFileError(f"{name} {path!r} does not exist. Pass a .npy file "
                         f"written with numpy.save.")
  try:
    x = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise InputFileError(
        f"{name} {path!r} is not a readable .npy array ({e}). Save inputs "
        f"with numpy.save(path, array) (numeric dtype, no pickle).") from e
  if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.number):
    raise InputFileError(f"{name} {path!r} does not hold a numeric array. "
                         f"Save inputs with numpy.save(path, array).")
  if x.ndim < 2:
    raise InputFileError(
        f"{name} {path!r} has shape {x.shape}; inputs need a batch axis and "
        f"a channel axis, e.g. (n, d) or (n, h, w, c). Reshape a vector to "
        f"(n, 1).")
  return x


def compute(model: str, x1_path: str, x2_path: Optional[str], out: str,
            batch_size: int, resume: bool, device_count: int = -1,
            progress: Optional[bool] = None) -> dict:
  """Computes and writes the kernels; returns the block counts.

  Raises:
    ModelLoadError, InputFileError, ShapeError: bad arguments.
    BlockStoreError: a store of an unfinished run exists and `resume` is
      False, or the store belongs to another computation.
  """
  out = os.fspath(out)
  directory = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(directory):
    raise InputFileError(f"--out {out!r}: directory {directory!r} does not "
                         f"exist. Create it, or write elsewhere.")
  blocks = store_path(out)
  if os.path.exists(blocks) and not resume:
    raise BlockStoreError(
        f"{blocks} holds the blocks of an unfinished run. Pass --resume to "
        f"continue it, or delete {blocks} to start afresh.")
  kernel_fn = load_model(model)
  x1 = load_input(x1_path, "X1")
  x2 = None if x2_path is None else load_input(x2_path, "X2")
  store = _store.BlockStore(blocks, tag=model)
  batched = batch(kernel_fn, batch_size, device_count, store_on_device=False,
                  store=store, progress=progress)
  result = batched(x1, x2, ("nngp", "ntk"))
  arrays = {"nngp": np.asarray(result[0]), "ntk": np.asarray(result[1])}
  _store.atomic_write(out, lambda f: np.savez(f, **arrays))
  shutil.rmtree(blocks, ignore_errors=True)
  return dict(batched.last_run, shapes={k: v.shape for k, v in arrays.items()})
