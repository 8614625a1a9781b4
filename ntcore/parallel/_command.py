"""What `ntcore kernel MODEL X1 [X2] --out FILE` does, apart from click.

`MODEL` is `module:function`; `function()` returns a stax triple
`(init_fn, apply_fn, kernel_fn)`. The NNGP and NTK of `X1` (and `X2`) are
computed with `batch` and written to `FILE` (a kernel file: `.npz` with
`nngp`, `ntk` and the JSON `ntcore_info`, see `ntcore.kernel_file`).
Finished blocks go to `FILE.blocks/` while the run lasts, so a killed run
continues with `--resume`; the directory is removed once `FILE` is written.
The store's manifest fingerprints the network itself (the jaxpr of one
block), so resuming after editing the model is refused, not mixed.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
from typing import Optional, Sequence

import numpy as np

from ntcore import kernel_file
from ntcore.errors import BlockStoreError, InputFileError
from ntcore.parallel import _store
from ntcore.parallel._model import load_model
from ntcore.parallel.batch import batch
from ntcore.parallel.executor import LOCAL, resolve


def store_path(out: str) -> str:
  """The block store directory beside `out`."""
  return os.fspath(out) + ".blocks"


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


def check_out(out: str, inputs: Sequence[str], force: bool) -> None:
  """Refuses an `--out` that would overwrite an input or a file ntcore did
  not write (unless `force`).

  Raises:
    InputFileError: `out`'s directory is missing, `out` is one of `inputs`,
      or `out` exists and is not a kernel file (without `force`).
  """
  directory = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(directory):
    raise InputFileError(f"--out {out!r}: directory {directory!r} does not "
                         f"exist. Create it, or write elsewhere.")
  for path in inputs:
    if path is not None and _same_file(out, path):
      raise InputFileError(
          f"--out {out!r} is the input {path!r}: writing the kernel there "
          f"would destroy the input. Pass another --out, e.g. "
          f"{os.path.splitext(out)[0]}.kernel.npz.")
  if os.path.isdir(out):
    raise InputFileError(f"--out {out!r} is a directory. Name a file.")
  if (os.path.exists(out) and not force
      and not kernel_file.written_by_ntcore(out)):
    raise InputFileError(
        f"--out {out!r} exists and is not a kernel file written by ntcore; "
        f"it is left alone. Pass another --out, or --force to overwrite it.")


def _same_file(a: str, b: str) -> bool:
  if os.path.exists(a) and os.path.exists(b):
    return os.path.samefile(a, b)
  return os.path.realpath(a) == os.path.realpath(b)


def input_info(path: str, x: np.ndarray) -> dict:
  """What a kernel file records of an input file."""
  return dict(path=os.path.abspath(path), shape=list(x.shape),
              dtype=str(x.dtype), sha256=_store.fingerprint([x]))


def kept(out: str) -> tuple[int, Optional[int]]:
  """`(blocks in the store, total blocks or None)` of the run for `out`."""
  store = _store.BlockStore(store_path(out))
  try:
    manifest = store.manifest() or {}
  except BlockStoreError:
    manifest = {}
  return len(store.done()), manifest.get("total")


def kept_line(out: str) -> str:
  """`kept 5 of 21 blocks in k.npz.blocks/` (or that nothing was kept)."""
  done, total = kept(out)
  if not done:
    return "no finished blocks were kept"
  of = f" of {total}" if total else ""
  return f"kept {done}{of} blocks in {store_path(out)}{os.sep}"


def resume_command(model: str, x1: str, x2: Optional[str], out: str,
                   batch_size: int, device_count: int, single: bool,
                   executor: str = LOCAL, scheduler: Optional[str] = None,
                   workers: Optional[int] = None) -> str:
  """The `ntcore kernel ... --resume` line that continues this run."""
  args = ["ntcore", "kernel", model, x1] + ([x2] if x2 else []) + [
      "--out", out, "--batch-size", str(batch_size)]
  if device_count != -1:
    args += ["--device-count", str(device_count)]
  if single:
    args.append("--float32")
  if executor != LOCAL:
    args += ["--executor", executor]
  if scheduler is not None:
    args += ["--scheduler", scheduler]
  if workers is not None:
    args += ["--workers", str(workers)]
  return shlex.join(args + ["--resume"])


def compute(model: str, x1_path: str, x2_path: Optional[str], out: str,
            batch_size: int, resume: bool, device_count: int = -1,
            progress: Optional[bool] = None, force: bool = False,
            executor: str = LOCAL, scheduler: Optional[str] = None,
            workers: Optional[int] = None) -> dict:
  """Computes and writes the kernels; returns the block counts.

  `executor` names who computes the blocks (`--executor`); a cluster
  executor gets `scheduler`, `workers` and `model` (its workers build the
  kernel function from the spec themselves).

  Raises:
    ModelLoadError, InputFileError, ShapeError: bad arguments, or an
      `--out` that is an input or a file ntcore did not write.
    BlockStoreError: a store of an unfinished run exists and `resume` is
      False, or the store belongs to another computation.
    ExecutorNotInstalledError, ExecutorError: an executor that is not
      installed, or options it does not take (`--scheduler` for the local
      executor).
    OSError: a file cannot be written (disk full, no permission); the
      blocks finished so far stay in the store.
  """
  out = os.fspath(out)
  if executor == LOCAL:
    runner = resolve(LOCAL, scheduler=scheduler, workers=workers)
  else:
    runner = resolve(executor, scheduler=scheduler, workers=workers,
                     model=model)
  check_out(out, [x1_path, x2_path], force)
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
                  store=store, progress=progress, executor=runner)
  result = batched(x1, x2, ("nngp", "ntk"))
  arrays = {"nngp": np.asarray(result[0]), "ntk": np.asarray(result[1])}
  manifest = store.manifest() or {}
  info = dict(
      model=model, ntcore_version=_store.ntcore_version(),
      created=datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      inputs=dict(x1=input_info(x1_path, x1),
                  x2=None if x2 is None else input_info(x2_path, x2)),
      arrays={k: dict(shape=list(v.shape), dtype=str(v.dtype))
              for k, v in arrays.items()},
      blocks=dict(batched.last_run, batch_size=batch_size,
                  block_shape=[manifest.get("b1"), manifest.get("b2")],
                  store_fingerprint=store.fingerprint,
                  network_fingerprint=manifest.get("network"),
                  device_count=device_count, executor=executor))
  kernel_file.save_kernel(out, arrays, info)
  shutil.rmtree(blocks, ignore_errors=True)
  return dict(batched.last_run, shapes={k: v.shape for k, v in arrays.items()})
