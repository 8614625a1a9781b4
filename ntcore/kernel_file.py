"""Kernel files: the `.npz` that `ntcore kernel` writes, and reading it back.

A kernel file holds the arrays (`nngp`, `ntk`) and one string entry,
`ntcore_info`: JSON saying how they were made (the model, the inputs'
shapes, dtypes and sha256, the ntcore version, the block size and block
store fingerprint, and how many blocks were computed and how many loaded
from the store). Nothing is pickled: `load_kernel` reads with
`allow_pickle=False`, so opening a file from elsewhere runs no code.
Files are written atomically (a temporary name, then `os.replace`) with the
mode the umask gives.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Mapping, NamedTuple

import numpy as np

from ntcore.errors import NtcoreError
from ntcore.parallel import _store

INFO_KEY = "ntcore_info"
FORMAT = "ntcore-kernel/1"


class KernelFileError(NtcoreError, ValueError):
  """A kernel file that is missing, unreadable, or not written by ntcore."""


class KernelFile(NamedTuple):
  """The contents of a kernel file.

  Attributes:
    arrays: name -> array, e.g. `{"nngp": (n1, n2), "ntk": (n1, n2)}`.
    info: how they were made (see the module docstring); `{}` for an
      `.npz` that ntcore did not write.
  """

  arrays: dict
  info: dict

  def __getattr__(self, name: str) -> np.ndarray:
    # `k.nngp`, `k.ntk`, like a `Kernel`.
    arrays = tuple.__getitem__(self, 0)
    if name in arrays:
      return arrays[name]
    raise AttributeError(f"the kernel file has no array {name!r}; it holds "
                         f"{sorted(arrays)}.")


def save_kernel(path: "str | os.PathLike", arrays: Mapping[str, Any],
                info: Mapping[str, Any]) -> None:
  """Writes `arrays` and the JSON `info` to `path` (`.npz`), atomically.

  Raises:
    KernelFileError: an array name that clashes with `ntcore_info`, or an
      array of Python objects (which would need pickle).
    OSError: the file cannot be written (disk full, no permission).
  """
  data = {}
  for name, a in arrays.items():
    a = np.asarray(a)
    if name == INFO_KEY or a.dtype == object:
      raise KernelFileError(
          f"cannot save array {name!r} ({a.dtype}) in a kernel file: the "
          f"name {INFO_KEY!r} is reserved and object arrays need pickle.")
    data[name] = a
  data[INFO_KEY] = np.asarray(json.dumps(dict(info, format=FORMAT),
                                         sort_keys=True))
  _store.atomic_write(os.fspath(path), lambda f: np.savez(f, **data))


def read_info(path: "str | os.PathLike") -> dict:
  """The `ntcore_info` of a kernel file; `{}` if it has none.

  Raises:
    KernelFileError: `path` is missing or not a readable `.npz`.
  """
  return _read(path, arrays=False).info


def load_kernel(path: "str | os.PathLike") -> KernelFile:
  """Reads a kernel file written by `ntcore kernel` (no pickle).

  Example:
    >>> k = ntcore.load_kernel("k.npz")  # doctest: +SKIP
    >>> k.ntk.shape, k.info["model"], k.info["blocks"]["computed"]

  Returns:
    `KernelFile(arrays, info)`; `k.nngp`, `k.ntk` are the arrays.

  Raises:
    KernelFileError: `path` is missing, not an `.npz`, holds pickled data,
      or its `ntcore_info` is not valid JSON.
  """
  return _read(path, arrays=True)


def _read(path, arrays: bool) -> KernelFile:
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise KernelFileError(f"kernel file {path!r} does not exist. Write one "
                          f"with: ntcore kernel MODEL X1.npy --out {path}")
  if not zipfile.is_zipfile(path):
    raise KernelFileError(f"{path!r} is not an .npz kernel file (not a zip "
                          f"archive: truncated, or another kind of file).")
  try:
    with np.load(path, allow_pickle=False) as data:
      info = str(data[INFO_KEY]) if INFO_KEY in data.files else None
      out = ({k: data[k] for k in data.files if k != INFO_KEY} if arrays
             else {})
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    raise KernelFileError(
        f"cannot read kernel file {path!r} ({e}). ntcore never pickles; a "
        f"file that needs pickle was not written by ntcore.") from e
  if info is None:
    return KernelFile(out, {})
  try:
    parsed = json.loads(info)
  except ValueError as e:
    raise KernelFileError(f"kernel file {path!r}: its {INFO_KEY} entry is not "
                          f"valid JSON ({e}).") from e
  if not isinstance(parsed, dict):
    raise KernelFileError(f"kernel file {path!r}: its {INFO_KEY} entry is "
                          f"not a JSON object.")
  return KernelFile(out, parsed)


def written_by_ntcore(path: "str | os.PathLike") -> bool:
  """Whether `path` is a kernel file ntcore wrote (its info names the
  format)."""
  try:
    return read_info(path).get("format") == FORMAT
  except KernelFileError:
    return False
