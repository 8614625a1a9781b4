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
from typing import Any, Callable, Iterator, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from ntcore.errors import PredictArgumentError, ShapeError

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
    get)`, read one block at a time (see `_store_panels.StoreOperator`)."""
    from ntcore.dynamics._store_panels import StoreOperator  # pylint: disable=import-outside-toplevel
    return StoreOperator(path, get)

  @classmethod
  def from_file(cls, path: Any, get: str = "ntk", panel: Optional[int] = None
                ) -> "KernelOperator":
    """An operator over array `get` of an uncompressed `.npz` (what
    `ntcore kernel` writes), read a panel of rows at a time."""
    from ntcore.dynamics._store_panels import FileOperator  # pylint: disable=import-outside-toplevel
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
