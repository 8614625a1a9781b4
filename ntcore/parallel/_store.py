"""An on-disk block store, so that a killed computation resumes where it was.

Layout of a store directory:

* `manifest.json`: what is being computed (shapes, block sizes, `get`, a
  fingerprint of the inputs and arguments, the shapes of each block's
  arrays). Resuming with anything different raises `BlockStoreError`.
* `<block>.npz`: one file per finished block (`d_0_0.npz`, `p_0_3.npz`),
  holding the block's arrays as `leaf0`, `leaf1`, ... in pytree order.

Every file is written to a temporary name in the same directory and moved in
place with `os.replace` (atomic on POSIX), so a kill at any moment leaves
either the whole block or nothing: a file that exists is complete. Nothing
is pickled (`np.load(..., allow_pickle=False)`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, Optional, Sequence

import numpy as np

from ntcore.errors import BLOCK_STORE_MISMATCH, BlockStoreError

MANIFEST = "manifest.json"
_FORMAT = 1
# Which difference to report first: the most telling one.
_PRIORITY = ("format", "tag", "function", "symmetric", "n1", "n2", "get",
             "b1", "b2", "inputs", "blocks", "arguments")


def fingerprint(arrays: Sequence[Any], extra: str = "") -> str:
  """sha256 of the arrays' shapes, dtypes and bytes, and of `extra`."""
  h = hashlib.sha256(extra.encode())
  for a in arrays:
    a = np.ascontiguousarray(np.asarray(a))
    h.update(f"{a.shape}{a.dtype.str}".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def atomic_write(path: str, write) -> None:
  """Calls `write(file)` on a temporary file, then moves it to `path`."""
  directory = os.path.dirname(path) or "."
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


class BlockStore:
  """A directory of finished blocks plus a manifest.

  Args:
    path: the directory; created if missing.
    tag: optional text naming the computation (e.g. the model), recorded in
      the manifest and compared on resume, because a Python function itself
      cannot be fingerprinted.
  """

  def __init__(self, path: "str | os.PathLike", tag: Optional[str] = None):
    self.path = os.fspath(path)
    self.tag = tag

  def __repr__(self):
    return f"BlockStore({self.path!r})"

  # --- manifest -------------------------------------------------------------
  def open(self, manifest: dict, write: bool = True) -> None:
    """Creates the store for `manifest`, or checks that it matches.

    Args:
      manifest: JSON-able description of the computation.
      write: create the directory and manifest if missing (only the process
        that writes blocks does).

    Raises:
      BlockStoreError: the store holds a different computation, or its
        manifest is unreadable.
    """
    manifest = dict(manifest, format=_FORMAT, tag=self.tag)
    stored = self.manifest()
    if stored is None:
      if write:
        os.makedirs(self.path, exist_ok=True)
        self._clean_temporaries()
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        atomic_write(os.path.join(self.path, MANIFEST),
                      lambda f: f.write(data))
      return
    # Compare through JSON so that tuples and lists are alike.
    now = json.loads(json.dumps(manifest))
    keys = sorted(set(now) | set(stored),
                  key=lambda k: (_PRIORITY.index(k) if k in _PRIORITY
                                 else len(_PRIORITY), k))
    for key in keys:
      if now.get(key) != stored.get(key):
        raise BlockStoreError(BLOCK_STORE_MISMATCH.format(
            path=self.path, what=key, stored=_short(stored.get(key)),
            now=_short(now.get(key))))
    if write:
      self._clean_temporaries()

  def manifest(self) -> Optional[dict]:
    """The stored manifest, or None when the store is new."""
    path = os.path.join(self.path, MANIFEST)
    if not os.path.exists(path):
      return None
    try:
      with open(path, "rb") as f:
        return json.loads(f.read().decode())
    except (OSError, ValueError) as e:
      raise BlockStoreError(
          f"Cannot read the block store manifest {path}: {e}. Delete "
          f"{self.path} to start the computation afresh.") from e

  def _clean_temporaries(self) -> None:
    for name in os.listdir(self.path):
      if name.startswith(".tmp-"):
        os.remove(os.path.join(self.path, name))

  # --- blocks ---------------------------------------------------------------
  def done(self) -> set[str]:
    """Names of the finished blocks."""
    if not os.path.isdir(self.path):
      return set()
    return {n[:-4] for n in os.listdir(self.path)
            if n.endswith(".npz") and not n.startswith(".")}

  def save(self, name: str, leaves: Sequence[np.ndarray]) -> None:
    """Writes block `name` (its arrays in pytree order) atomically."""
    arrays = {f"leaf{k}": np.asarray(a) for k, a in enumerate(leaves)}
    for key, a in arrays.items():
      if a.dtype == object:
        raise BlockStoreError(f"Block {name}: {key} is an object array, "
                              "which cannot be stored without pickle.")
    atomic_write(os.path.join(self.path, name + ".npz"),
                  lambda f: np.savez(f, **arrays))

  def load(self, name: str, n_leaves: int) -> list[np.ndarray]:
    """Reads block `name`'s arrays.

    Raises:
      BlockStoreError: the file is unreadable or holds other arrays.
    """
    path = os.path.join(self.path, name + ".npz")
    try:
      with np.load(path, allow_pickle=False) as data:
        leaves = [data[f"leaf{k}"] for k in range(n_leaves)]
    except (OSError, KeyError, ValueError) as e:
      raise BlockStoreError(
          f"Block file {path} is unreadable ({e}). Delete it: it will be "
          f"recomputed on the next run.") from e
    return leaves


def _short(value: Any, limit: int = 120) -> str:
  text = json.dumps(value)
  return text if len(text) <= limit else text[:limit] + "..."
