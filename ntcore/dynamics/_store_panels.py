"""Kernel operators over kernels on disk: a block store, an `.npz` file.

Neither ever holds more than one block (store) or one panel of rows (file)
in memory, plus its float64 copy; the operating system's page cache may
keep the files, but that memory is not the process's. Files are read with
ordinary reads, not `mmap`: pages of a mapped file count towards the
process's resident memory as they are touched, which a pass over the whole
kernel would fill.

* `StoreOperator` reads the store of `ntcore.batch(kernel_fn, b,
  store=path)(x, None, get)` through `BlockStore`: `T (T + 1) / 2` blocks
  on and above the diagonal (the ones below are their transposes, as the
  kernel is symmetric). Each block is checked against its checksum the
  first time it is read; later passes read it without the check.
* `FileOperator` reads one array of an uncompressed `.npz` (what `np.savez`
  and `ntcore kernel` write): the array's bytes sit in the zip archive as
  they are, so rows `a:b` are one contiguous read.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
from typing import Iterator, Optional

import numpy as np

from ntcore.dynamics.operator import KernelOperator, as_matrix, panel_rows
from ntcore.errors import BlockStoreError
from ntcore.kernel_file import KernelFileError
from ntcore.parallel import BlockStore


class StoreOperator(KernelOperator):
  """The symmetric kernel `get` of a finished block store, block by block.

  Raises:
    BlockStoreError: no store at `path`, a store of a non-symmetric kernel
      (`x2` given), without `get`, unfinished, or with a damaged block.
  """

  def __init__(self, path, get: str):
    path = os.fspath(path)
    self._store = BlockStore(path)
    manifest = self._store.manifest()
    if manifest is None:
      raise BlockStoreError(
          f"{path!r} holds no block store (no manifest.json). Write one with "
          f"ntcore.batch(kernel_fn, batch_size, store={path!r})(x_train, "
          f"None, ('nngp', 'ntk')).")
    if not manifest.get("symmetric"):
      raise BlockStoreError(
          f"the block store {path!r} holds a kernel between two input sets "
          f"(x2 was given); a training kernel is computed with x2=None.")
    stored = manifest.get("get")
    names = [stored] if isinstance(stored, str) else list(stored or [])
    if get not in names:
      raise BlockStoreError(
          f"the block store {path!r} was computed with get={stored!r}, which "
          f"has no {get!r}. Compute it with get=('nngp', 'ntk'), or ask for "
          f"one of {names}.")
    self._leaf = names.index(get)
    self._expected = {kind: [(tuple(s), d) for s, d in leaves]
                      for kind, leaves in manifest["blocks"].items()}
    shape, dtype = self._expected["d"][self._leaf]
    n, self._b = int(manifest["n1"]), int(manifest["b1"])
    super().__init__((n, n) + tuple(shape[2:]), dtype)
    self._m = self.size // max(n, 1)
    self._t = -(-n // self._b)
    missing = [name for name in self._names() if name not in
               self._store.done()]
    if missing:
      raise BlockStoreError(
          f"the block store {path!r} is unfinished: {len(missing)} of "
          f"{len(self._names())} blocks are missing (e.g. {missing[0]}). Run "
          f"the same ntcore.batch call again to finish it.")
    self._checked: set[str] = set()

  def _names(self) -> list[str]:
    return [f"{'d' if i == j else 'p'}_{i}_{j}" for i in range(self._t)
            for j in range(i, self._t)]

  def _rows_of(self, i: int) -> slice:
    n = self.shape[0]
    return slice(i * self._b * self._m, min((i + 1) * self._b, n) * self._m)

  def _block(self, i: int, j: int) -> np.ndarray:
    """Block `(i, j)`, `j >= i`, as a `(P_i, P_j)` matrix, padding dropped."""
    name = f"{'d' if i == j else 'p'}_{i}_{j}"
    expected = self._expected["d" if i == j else "p"]
    if name in self._checked:
      path = os.path.join(self._store.path, name + ".npz")
      with np.load(path, allow_pickle=False) as data:
        leaf = data[f"leaf{self._leaf}"]
    else:
      leaves = self._store.load(name, expected)
      if leaves is None:
        raise BlockStoreError(
            f"block {name} of the block store {self._store.path!r} is damaged "
            f"(see the warning above; the file was removed). Run the same "
            f"ntcore.batch call again to compute it anew.")
      leaf = leaves[self._leaf]
      self._checked.add(name)
    ri, rj = self._rows_of(i), self._rows_of(j)
    return as_matrix(leaf)[:ri.stop - ri.start, :rj.stop - rj.start]

  def blocks(self) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """`(rows, cols, block)` for every stored block, on and above the
    diagonal."""
    for i in range(self._t):
      for j in range(i, self._t):
        yield self._rows_of(i), self._rows_of(j), self._block(i, j)

  def matmul(self, v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    v2 = v.reshape(self.size, -1)
    out = np.zeros_like(v2)
    for ri, rj, block in self.blocks():
      block = block.astype(np.float64, copy=False)
      out[ri] += block @ v2[rj]
      if ri != rj:
        out[rj] += block.T @ v2[ri]
    return out.reshape(v.shape)

  def panels(self) -> Iterator[tuple[slice, np.ndarray]]:
    for i in range(self._t):
      ri = self._rows_of(i)
      parts = [self._block(j, i).T for j in range(i)]
      parts += [self._block(i, j) for j in range(i, self._t)]
      yield ri, np.concatenate(parts, axis=1)

  def _compute_diagonal(self) -> np.ndarray:
    return np.concatenate([np.diagonal(self._block(i, i))
                           for i in range(self._t)])

  def rows(self, index) -> np.ndarray:
    """One pass over the blocks, whatever `index` holds."""
    index = np.asarray(index, int)
    out = np.empty((index.size, self.size), self.dtype)
    for ri, rj, block in self.blocks():
      for (r, c, b) in ((ri, rj, block), (rj, ri, block.T)):
        hit = (index >= r.start) & (index < r.stop)
        if hit.any():
          out[hit, c] = b[index[hit] - r.start]
        if ri == rj:
          break
    return out


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip entry's local file header


class FileOperator(KernelOperator):
  """Array `get` of an uncompressed `.npz`, read a panel of rows at a time.

  Raises:
    KernelFileError: `path` is not a zip archive, has no `get`, stores
      it compressed, or holds an array that is not a square kernel.
  """

  def __init__(self, path, get: str, panel: Optional[int] = None):
    self._path = os.fspath(path)
    if not zipfile.is_zipfile(self._path):
      raise KernelFileError(
          f"{self._path!r} is not an .npz file (not a zip archive). Pass a "
          f"kernel file written by ntcore kernel or numpy.savez.")
    with zipfile.ZipFile(self._path) as z:
      names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
      if get not in names:
        raise KernelFileError(
            f"{self._path!r} has no array {get!r}; it holds {sorted(names)}.")
      info = z.getinfo(get + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
      raise KernelFileError(
          f"{self._path!r} stores {get!r} compressed (numpy.savez_compressed), "
          f"so its rows cannot be read in place. Save it with numpy.savez, or "
          f"load it and use KernelOperator.from_array.")
    with open(self._path, "rb") as f:
      f.seek(info.header_offset)
      fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
      f.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
      version = np.lib.format.read_magic(f)
      read = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
              np.lib.format.read_array_header_2_0)
      shape, fortran, dtype = read(f)
      self._offset = f.tell()
    if dtype.hasobject or (fortran and len(shape) > 2):
      raise KernelFileError(
          f"array {get!r} of {self._path!r} is {dtype} "
          f"{'Fortran' if fortran else 'C'}-ordered; a kernel operator reads "
          f"numeric C-ordered kernels (a symmetric (n, n) one in either order).")
    super().__init__(shape, dtype)
    n = shape[0]
    self._per_row = math.prod(shape[1:])  # elements per example
    m = self.size // max(n, 1)
    self._rows = max(1, panel_rows(self.size, panel) // max(m, 1))

  def _read(self, f, start: int, stop: int) -> np.ndarray:
    """Examples `start:stop` as a `(rows, P)` matrix."""
    f.seek(self._offset + start * self._per_row * self.dtype.itemsize)
    count = (stop - start) * self._per_row
    slab = np.fromfile(f, self.dtype, count)
    if slab.size != count:
      raise KernelFileError(f"{self._path!r} is truncated: examples "
                                 f"{start}:{stop} are missing.")
    return as_matrix(slab.reshape((stop - start,) + self.shape[1:]))

  def panels(self) -> Iterator[tuple[slice, np.ndarray]]:
    n = self.shape[0]
    m = self.size // max(n, 1)
    with open(self._path, "rb") as f:
      for start in range(0, n, self._rows):
        stop = min(start + self._rows, n)
        yield slice(start * m, stop * m), self._read(f, start, stop)

  def rows(self, index) -> np.ndarray:
    index = np.asarray(index, int)
    m = self.size // max(self.shape[0], 1)
    out = np.empty((index.size, self.size), self.dtype)
    with open(self._path, "rb") as f:
      for a, row in enumerate(index):
        out[a] = self._read(f, row // m, row // m + 1)[row % m]
    return out

  def _compute_diagonal(self) -> np.ndarray:
    if self.ndim > 2:
      return super()._compute_diagonal()
    n, size = self.shape[0], self.dtype.itemsize
    out = np.empty(n, self.dtype)
    with open(self._path, "rb") as f:
      for i in range(n):
        f.seek(self._offset + (i * n + i) * size)
        out[i] = np.frombuffer(f.read(size), self.dtype)[0]
    return out
