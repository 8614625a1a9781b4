"""Kernel matrices of 2-D inputs, as NumPy arrays, in few compiled shapes.

scikit-learn calls an estimator on many row counts (cross-validation folds,
subsets, one sample); a `kernel_fn` compiles once per input shape. Rows are
therefore padded with zeros to the next power of two (at least 8), which is
exact because the examples of a stax network without batch interaction do
not interact (the same assumption `ntcore.batch` makes), and the padded
rows and columns are cut off. With `batch_size > 0` the kernel goes through
`ntcore.batch` in `batch_size x batch_size` blocks instead, so memory is
bounded by a block.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax.numpy as jnp
import ntcore
import numpy as np

MIN_ROWS = 8


def padded_rows(n: int) -> int:
  """The smallest power of two >= max(n, MIN_ROWS)."""
  return max(MIN_ROWS, 1 << max(n - 1, 0).bit_length())


def pad(x: np.ndarray) -> np.ndarray:
  """`x` with zero rows appended up to `padded_rows(len(x))`."""
  out = np.zeros((padded_rows(len(x)),) + x.shape[1:], x.dtype)
  out[:len(x)] = x
  return out


def kernel(kernel_fn: Callable, x1: np.ndarray, x2: Optional[np.ndarray],
           get: str, batch_size: int = 0) -> np.ndarray:
  """`kernel_fn(x1, x2, get)` as a NumPy `(n1, n2)` array.

  Args:
    kernel_fn: an analytic kernel function.
    x1: `(n1, d)` inputs.
    x2: `(n2, d)` inputs, or None for `x1` with itself.
    get: `"nngp"` or `"ntk"`.
    batch_size: 0: one padded call; > 0: `ntcore.batch` blocks.
  """
  x1 = np.asarray(x1)
  x2 = None if x2 is None else np.asarray(x2)
  if batch_size:
    return np.array(ntcore.batch(kernel_fn, batch_size)(x1, x2, get))
  n1 = len(x1)
  n2 = n1 if x2 is None else len(x2)
  k = kernel_fn(jnp.asarray(pad(x1)),
                None if x2 is None else jnp.asarray(pad(x2)), get)
  # A writable copy: NumPy views of JAX arrays are read-only, and
  # scikit-learn adds to kernel diagonals in place (KernelRidge).
  return np.array(k[:n1, :n2])


def diagonal(kernel_fn: Callable, x: np.ndarray, get: str,
             batch_size: int = 0) -> np.ndarray:
  """`diag(kernel_fn(x, None, get))`, `(n,)`, in blocks of `batch_size`
  (default 256) rows: memory `O(n * block)` rather than `O(n^2)`."""
  x = np.asarray(x)
  size = batch_size or 256
  return np.concatenate(
      [np.diagonal(kernel(kernel_fn, x[i:i + size], None, get))
       for i in range(0, len(x), size)] or [np.zeros(0)])
