"""`KernelOperator`: a symmetric training kernel read in row panels.

An iterative solver needs only products `K @ V`, the diagonal of `K` and a
few rows (for its preconditioner), never `K` whole. A `KernelOperator`
gives exactly those, from wherever the kernel lives:

* `KernelOperator.from_array(k)`: a kernel in memory, `(n, n)` or
  `(n, n, h, h, ...)`;
* `KernelOperator.from_store(path, get)`: the finished block store of
  `ntcore.batch(..., store=path)(x, None, get)`, one block at a time;
* `KernelOperator.from_file(path, get)`: an uncompressed `.npz` kernel file
  (`ntcore kernel ... --out FILE`), one panel of rows at a time;
* `KernelOperator.from_kernel_fn(kernel_fn, x, get)`: panels computed on
  the fly, `kernel_fn(x[rows], x, get)`, never stored.

The operator stands for the `(P, P)` matrix `make_2d(k)` (`P = n h ...`,
see `_axes.py`), and `shape` is that of the kernel it stands for, so it
passes the same shape checks as the array. Products accumulate in float64
whatever the kernel's dtype: each panel is cast to float64 just before it
is multiplied, so memory holds one float64 panel, never the whole kernel.
All of it is NumPy on the host: an operator reading files cannot run under
`jax.jit`.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
from typing import Any, Callable, Iterator, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from ntcore.errors import BlockStoreError, PredictArgumentError, ShapeError
from ntcore.kernel_file import KernelFileError
from ntcore.parallel import BlockStore

# Rows per panel of the in-memory and computed operators: 1024 rows of a
# P = 10^6 kernel are 8 GB in float64, so the panel shrinks with P to hold
# about 64 MiB of float64.
PANEL_BYTES = 64 * 2**20


def panel_rows(p: int, rows: Optional[int] = None) -> int:
  """Rows per panel: `rows`, or as many as fit `PANEL_BYTES` in float64."""
  if rows is not None:
    if not isinstance(rows, (int, np.integer)) or rows < 1:
      raise PredictArgumentError(
          f"panel rows={rows!r}; pass a positive int (rows of the kernel "
          f"read or computed at a time).")
    return int(rows)
  return int(max(1, min(p, PANEL_BYTES // (8 * max(p, 1)))))


class KernelOperator:
  """A symmetric positive semi-definite kernel as a linear operator.

  Subclasses give `panels()` (and may give faster `matmul`, `diagonal`,
  `rows`). Attributes:

    shape: the kernel's shape, `(n, n, h, h, ...)` as the array would be.
    dtype: the kernel's dtype (products are float64 regardless).
    size: `P`, the side of the `(P, P)` matrix.
  """

  shape: tuple[int, ...]
  dtype: np.dtype

  def __init__(self, shape: Sequence[int], dtype: Any):
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or len(shape) % 2 or shape[::2] != shape[1::2]:
      raise ShapeError(
          f"a KernelOperator stands for a square training kernel "
          f"(n, n, h, h, ...), got shape {shape}. Pass the train-train "
          f"kernel (x2=None).")
    self.shape, self.dtype = shape, np.dtype(dtype)
    self.size = math.prod(shape[::2])
    self._diagonal: Optional[np.ndarray] = None

  @property
  def ndim(self) -> int:
    return len(self.shape)

  def __repr__(self) -> str:
    return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype})"

  # --- what a subclass provides ---------------------------------------------
  def panels(self) -> Iterator[tuple[slice, np.ndarray]]:
    """`(rows, panel)` pairs covering the matrix: `panel = K2[rows, :]`."""
    raise NotImplementedError

  # --- derived ----------------------------------------------------------------
  def matmul(self, v: np.ndarray) -> np.ndarray:
    """`K2 @ v` in float64, for `v: (P,)` or `(P, Q)`: one pass over `K`."""
    v = np.asarray(v, np.float64)
    flat = v.ndim == 1
    v2 = v.reshape(self.size, -1)
    out = np.empty_like(v2)
    for rows, panel in self.panels():
      out[rows] = panel.astype(np.float64, copy=False) @ v2
    return out[:, 0] if flat else out

  def __matmul__(self, v: np.ndarray) -> np.ndarray:
    return self.matmul(v)

  def diagonal(self) -> np.ndarray:
    """`diag(K2)`, `(P,)` float64, computed once."""
    if self._diagonal is None:
      self._diagonal = np.asarray(self._compute_diagonal(), np.float64)
    return self._diagonal

  def _compute_diagonal(self) -> np.ndarray:
    d = np.empty(self.size)
    for rows, panel in self.panels():
      d[rows] = panel[np.arange(rows.stop - rows.start),
                      np.arange(rows.start, rows.stop)]
    return d

  def rows(self, index: Sequence[int]) -> np.ndarray:
    """`K2[index, :]`, `(len(index), P)` in the kernel's dtype."""
    index = np.asarray(index, int)
    out = np.empty((index.size, self.size), self.dtype)
    for rows, panel in self.panels():
      hit = (index >= rows.start) & (index < rows.stop)
      if hit.any():
        out[hit] = panel[index[hit] - rows.start]
    return out

  def columns(self, index: Sequence[int]) -> np.ndarray:
    """`K2[:, index]`, `(P, len(index))`: the rows' transpose (`K` is
    symmetric)."""
    return self.rows(index).T

  def to_array(self) -> np.ndarray:
    """The whole kernel in its own layout (`shape`): `P^2` memory."""
    k2 = np.empty((self.size, self.size), self.dtype)
    for rows, panel in self.panels():
      k2[rows] = panel
    return _unzip(k2, self.shape)

  # --- constructors -----------------------------------------------------------
  @classmethod
  def from_array(cls, k: Any, panel: Optional[int] = None
                 ) -> "KernelOperator":
    """An operator over a kernel held in memory, `(n, n, h, h, ...)`."""
    return DenseOperator(k, panel)

  @classmethod
  def from_store(cls, path: Any, get: str = "ntk") -> "KernelOperator":
    """An operator over the blocks of `ntcore.batch(..., store=path)(x, None,
    get)`, read one block at a time (see `StoreOperator`)."""
    return StoreOperator(path, get)

  @classmethod
  def from_file(cls, path: Any, get: str = "ntk", panel: Optional[int] = None
                ) -> "KernelOperator":
    """An operator over array `get` of an uncompressed `.npz` (what
    `ntcore kernel` writes), read a panel of rows at a time."""
    return FileOperator(path, get, panel)

  @classmethod
  def from_kernel_fn(cls, kernel_fn: Callable[..., Any], x: Any,
                     get: str = "ntk", panel: Optional[int] = None,
                     **kernel_fn_kwargs) -> "KernelOperator":
    """An operator whose panels are `kernel_fn(x[rows], x, get)`, computed
    on every pass and never stored: memory of one panel, time of a kernel
    evaluation per product."""
    return FunctionOperator(kernel_fn, x, get, panel, kernel_fn_kwargs)


def as_matrix(k: np.ndarray) -> np.ndarray:
  """NumPy `make_2d`: `(a1, b1, a2, b2, ...)` as `(a1 a2 .., b1 b2 ..)`."""
  if k.ndim == 2:
    return k
  m = k.ndim // 2
  k = np.transpose(k, tuple(range(0, 2 * m, 2)) + tuple(range(1, 2 * m, 2)))
  return k.reshape((math.prod(k.shape[:m]), math.prod(k.shape[m:])))


def _unzip(k2: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
  """`(P, P)` matrix back to the kernel layout `(n, n, h, h, ...)`."""
  half = shape[::2]
  k = k2.reshape(half + half)
  m = len(half)
  return np.transpose(k, tuple(a for i in range(m) for a in (i, m + i)))


class DenseOperator(KernelOperator):
  """A kernel in memory, multiplied a panel at a time (float64 panels)."""

  def __init__(self, k: Any, panel: Optional[int] = None):
    k = np.asarray(k)
    if not np.issubdtype(k.dtype, np.inexact):
      k = k.astype(np.float64)
    super().__init__(k.shape, k.dtype)
    self._k2 = as_matrix(k)
    self._rows = panel_rows(self.size, panel)

  def panels(self) -> Iterator[tuple[slice, np.ndarray]]:
    for start in range(0, self.size, self._rows):
      rows = slice(start, min(start + self._rows, self.size))
      yield rows, self._k2[rows]

  def matmul(self, v: np.ndarray) -> np.ndarray:
    if self.dtype == np.float64:  # no cast needed: one BLAS call
      v = np.asarray(v, np.float64)
      return self._k2 @ v
    return super().matmul(v)

  def _compute_diagonal(self) -> np.ndarray:
    return np.diagonal(self._k2)

  def rows(self, index: Sequence[int]) -> np.ndarray:
    return self._k2[np.asarray(index, int)]


class FunctionOperator(KernelOperator):
  """Panels `kernel_fn(x[rows], x, get)`, computed again on every pass."""

  def __init__(self, kernel_fn, x, get: str, panel: Optional[int],
               kwargs: dict):
    if not isinstance(get, str):
      raise PredictArgumentError(
          f"get={get!r}: a KernelOperator is one kernel; pass 'nngp' or "
          f"'ntk' (one operator each).")
    self._fn, self._x, self._get, self._kw = kernel_fn, x, get, kwargs
    n = int(np.shape(x)[0])
    probe = self._call(x[:1], None)
    super().__init__((n, n) + probe.shape[2:], probe.dtype)
    self._rows = max(1, panel_rows(self.size, panel)
                     // max(self.size // max(n, 1), 1))

  def _call(self, x1, x2) -> np.ndarray:
    """`kernel_fn(x1, x2, get)` as a NumPy array in the kernel layout."""
    out = self._fn(x1, x2, self._get, **self._kw)
    if not isinstance(out, (np.ndarray, jnp.ndarray)):
      out = getattr(out, self._get)
    return np.asarray(out)

  def panels(self) -> Iterator[tuple[slice, np.ndarray]]:
    n = self.shape[0]
    m = self.size // max(n, 1)
    for start in range(0, n, self._rows):
      rows = slice(start, min(start + self._rows, n))
      panel = self._call(self._x[rows], self._x)
      yield slice(start * m, rows.stop * m), as_matrix(panel)

  def rows(self, index: Sequence[int]) -> np.ndarray:
    index = np.asarray(index, int)
    m = self.size // max(self.shape[0], 1)
    examples, where = np.unique(index // m, return_inverse=True)
    block = as_matrix(self._call(self._x[examples], self._x))
    return block[where.reshape(-1) * m + index % m]

  def _compute_diagonal(self) -> np.ndarray:
    n = self.shape[0]
    out = []
    for start in range(0, n, self._rows):
      block = self._call(self._x[start:start + self._rows], None)
      out.append(np.diagonal(as_matrix(block)))
    return np.concatenate(out)


# Kernels on disk.
#
# Kernel operators over kernels on disk: a block store, an `.npz` file.
#
# Neither ever holds more than one block (store) or one panel of rows (file)
# in memory, plus its float64 copy; the operating system's page cache may
# keep the files, but that memory is not the process's. Files are read with
# ordinary reads, not `mmap`: pages of a mapped file count towards the
# process's resident memory as they are touched, which a pass over the whole
# kernel would fill.
#
# * `StoreOperator` reads the store of `ntcore.batch(kernel_fn, b,
#   store=path)(x, None, get)` through `BlockStore`: `T (T + 1) / 2` blocks
#   on and above the diagonal (the ones below are their transposes, as the
#   kernel is symmetric). Each block is checked against its checksum the
#   first time it is read; later passes read it without the check.
# * `FileOperator` reads one array of an uncompressed `.npz` (what `np.savez`
#   and `ntcore kernel` write): the array's bytes sit in the zip archive as
#   they are, so rows `a:b` are one contiguous read.


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
