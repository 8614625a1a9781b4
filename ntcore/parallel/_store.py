"""An on-disk block store, so that a killed computation resumes where it was.

Layout of a store directory:

* `manifest.json`: what is being computed: shapes, block sizes, `get`,
  fingerprints of the inputs, of the arguments and of the network (the
  jaxpr of `kernel_fn` on one block, literal constants included, see
  `network_fingerprint`), dtypes, the ntcore version and the shapes of each
  block's arrays. Resuming with anything different raises
  `BlockStoreError` naming what differs.
* `<block>.npz`: one file per finished block (`d_0_0.npz`, `p_0_3.npz`),
  holding the block's arrays as `leaf0`, `leaf1`, ... in pytree order and
  `checksum`, the sha256 of those arrays.
* `.lock`: taken (`fcntl.flock`) while the manifest is created or checked,
  so that two processes starting on one store agree on one manifest.

Every file is written to a temporary name unique to its writer
(`.tmp-<host>-<pid>-<random>`) and moved in place with `os.replace` (atomic
on POSIX), so a kill at any moment leaves either the whole block or
nothing, and two processes filling one store never touch each other's
temporary files; leftovers of dead processes are removed when a store is
opened. A block is checked before use (its arrays' names, shapes, dtypes
and checksum); a damaged one is recomputed, with a `BlockStoreWarning`.
Nothing is pickled (`np.load(..., allow_pickle=False)`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import time
import warnings
import zipfile
from typing import Any, Optional, Sequence

import numpy as np

from ntcore.errors import BLOCK_STORE_MISMATCH, BlockStoreError

try:
  import fcntl
except ImportError:  # not POSIX: no locking, one writer per store
  fcntl = None

MANIFEST = "manifest.json"
_LOCK = ".lock"
_FORMAT = 2
_TMP = ".tmp-"
# Temporaries of processes on other hosts are removed once this old.
_STALE_S = 24 * 3600
# Which difference to report first: the most telling one.
_PRIORITY = ("format", "tag", "symmetric", "n1", "n2", "get", "b1", "b2",
             "dtype", "inputs", "arguments", "blocks", "network", "version")
_INFORMATIVE = ("function",)
_WHAT = {
    "network": "the network (kernel_fn's computation: its layers and "
               "hyper-parameters)",
    "version": "the ntcore version",
}


class BlockStoreWarning(UserWarning):
  """A block file that failed its checks; the block is computed again."""


def fingerprint(arrays: Sequence[Any], extra: str = "") -> str:
  """sha256 of the arrays' shapes, dtypes and bytes, and of `extra`."""
  h = hashlib.sha256(extra.encode())
  for a in arrays:
    a = np.ascontiguousarray(np.asarray(a))
    h.update(f"{a.shape}{a.dtype.str}".encode())
    h.update(a.tobytes())
  return h.hexdigest()


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def network_fingerprint(fn, *example_args) -> Optional[str]:
  """sha256 of the jaxpr of `fn(*example_args)` and of its constants.

  The jaxpr's text holds every primitive, shape and literal constant (a
  `W_std=1.5` becomes `mul 2.25 ...`), and array constants are hashed by
  value, so two networks that differ in any layer or hyper-parameter differ
  here, and the same network built in another process agrees. Only the
  example arguments' shapes and dtypes matter.

  Returns:
    The hex digest, or None when `fn` cannot be traced.
  """
  import jax  # pylint: disable=import-outside-toplevel
  try:
    closed = jax.make_jaxpr(fn)(*example_args)
  except Exception:  # pylint: disable=broad-except
    return None
  text = _ADDRESS.sub("", str(closed))
  return fingerprint([np.asarray(c) for c in closed.consts
                      if hasattr(c, "shape")], text)


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def _tmp_prefix() -> str:
  return f"{_TMP}{socket.gethostname()}-{os.getpid()}-"


def atomic_write(path: str, write) -> None:
  """Calls `write(file)` on a temporary file, then moves it to `path`.

  The temporary name is unique to this process; the file gets the mode an
  ordinary `open(path, "w")` would (`0o666` less the umask), not
  `mkstemp`'s 0600.
  """
  directory = os.path.dirname(path) or "."
  fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(), dir=directory)
  try:
    os.fchmod(fd, 0o666 & ~_umask())
    with os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def _checksum(leaves: Sequence[np.ndarray]) -> str:
  return fingerprint(leaves)


class BlockStore:
  """A directory of finished blocks plus a manifest.

  Several processes may fill one store at once (each computes the blocks
  missing when it started; a block written twice is written whole twice).

  Args:
    path: the directory; created if missing.
    tag: optional text naming the computation, recorded in the manifest and
      compared on resume (the network itself is fingerprinted anyway).
  """

  def __init__(self, path: "str | os.PathLike", tag: Optional[str] = None):
    self.path = os.fspath(path)
    self.tag = tag
    self._opened: Optional[dict] = None

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
    # Compare through JSON so that tuples and lists are alike.
    now = json.loads(json.dumps(dict(manifest, format=_FORMAT, tag=self.tag)))
    if write:
      os.makedirs(self.path, exist_ok=True)
    with self._locked(write):
      stored = self.manifest()
      if stored is None:
        if write:
          data = json.dumps(now, indent=1, sort_keys=True).encode()
          atomic_write(os.path.join(self.path, MANIFEST),
                       lambda f: f.write(data))
      else:
        _compare(self.path, stored, now)
      if write:
        self._clean_temporaries()
    self._opened = now

  @property
  def fingerprint(self) -> Optional[str]:
    """sha256 of the manifest this store was opened with (None before)."""
    if self._opened is None:
      return None
    return hashlib.sha256(json.dumps(
        self._opened, sort_keys=True).encode()).hexdigest()

  @contextlib.contextmanager
  def _locked(self, write: bool):
    if fcntl is None or not os.path.isdir(self.path):
      yield
      return
    try:
      fd = os.open(os.path.join(self.path, _LOCK), os.O_RDWR | os.O_CREAT,
                   0o666)
    except OSError:
      if write:
        raise
      yield  # a read-only store: nobody writes its manifest now
      return
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
      yield
    finally:
      os.close(fd)  # releases the lock

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
    """Removes temporary files whose writer is gone: a dead process of this
    host, an old file of another host, or a name of no known writer."""
    host = socket.gethostname()
    for name in os.listdir(self.path):
      if not name.startswith(_TMP):
        continue
      path = os.path.join(self.path, name)
      match = re.match(re.escape(_TMP) + r"(.+)-(\d+)-[^-]+$", name)
      stale = False
      if match and match.group(1) == host:
        stale = not _alive(int(match.group(2)))
      elif match:
        with contextlib.suppress(OSError):
          stale = time.time() - os.path.getmtime(path) > _STALE_S
      else:
        stale = True
      if stale:
        with contextlib.suppress(FileNotFoundError):
          os.remove(path)

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
    arrays["checksum"] = np.asarray(_checksum(list(arrays.values())))
    atomic_write(os.path.join(self.path, name + ".npz"),
                 lambda f: np.savez(f, **arrays))

  def load(self, name: str, expected: "int | Sequence[Any]"
           ) -> Optional[list[np.ndarray]]:
    """Block `name`'s arrays, or None (with a warning) if the file is bad.

    Args:
      name: the block's name.
      expected: the blocks' arrays as `(shape, dtype)` pairs or objects
        with `.shape` and `.dtype` (e.g. `jax.ShapeDtypeStruct`), or just
        their number.

    A file that is truncated or not an `.npz`, lacks an array, holds arrays
    of other shapes or dtypes, or fails its checksum is reported with a
    `BlockStoreWarning`, removed, and None is returned: compute the block
    again.
    """
    path = os.path.join(self.path, name + ".npz")
    n = expected if isinstance(expected, int) else len(expected)
    if not zipfile.is_zipfile(path):
      return self._bad(path, "not an .npz (zip) file: truncated or "
                             "overwritten")
    try:
      with np.load(path, allow_pickle=False) as data:
        leaves = [data[f"leaf{k}"] for k in range(n)]
        stored = str(data["checksum"]) if "checksum" in data.files else None
    except (OSError, KeyError, ValueError, EOFError,
            zipfile.BadZipFile) as e:
      return self._bad(path, f"unreadable ({type(e).__name__}: {e})")
    if not isinstance(expected, int):
      for k, (a, want) in enumerate(zip(leaves, expected)):
        shape, dtype = ((want.shape, want.dtype) if hasattr(want, "shape")
                        else want)
        if a.shape != tuple(shape) or a.dtype != np.dtype(dtype):
          return self._bad(path, f"leaf{k} is {a.dtype}{list(a.shape)}, "
                                 f"expected {np.dtype(dtype)}{list(shape)}")
    if stored is None:
      return self._bad(path, "it has no checksum")
    if _checksum(leaves) != stored:
      return self._bad(path, "its checksum does not match its arrays")
    return leaves

  def _bad(self, path: str, why: str) -> None:
    warnings.warn(BlockStoreWarning(
        f"Block file {path} is damaged: {why}. It is computed again."),
        stacklevel=3)
    with contextlib.suppress(OSError):
      os.remove(path)
    return None


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _compare(path: str, stored: dict, now: dict) -> None:
  keys = sorted(set(now) | set(stored),
                key=lambda k: (_PRIORITY.index(k) if k in _PRIORITY
                               else len(_PRIORITY), k))
  for key in keys:
    # The function's name is for people: the network's fingerprint (which
    # is the name when it cannot be traced) says what it computes.
    if key not in _INFORMATIVE and now.get(key) != stored.get(key):
      raise BlockStoreError(BLOCK_STORE_MISMATCH.format(
          path=path, what=_WHAT.get(key, key), stored=_short(stored.get(key)),
          now=_short(now.get(key))))


def _short(value: Any, limit: int = 120) -> str:
  text = json.dumps(value)
  return text if len(text) <= limit else text[:limit] + "..."


def ntcore_version() -> str:
  """The installed version of the core distribution (`ntcore-jax`)."""
  import importlib.metadata  # pylint: disable=import-outside-toplevel
  try:
    return importlib.metadata.version("ntcore-jax")
  except importlib.metadata.PackageNotFoundError:
    return "unknown"
