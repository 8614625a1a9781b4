"""What each array of a kernel function's output is, and how blocks of it
are put together.

A kernel function returns a pytree: a `Kernel`, an array (`get="nngp"`), a
namedtuple (`get=("nngp", "ntk")`, or the `EmpiricalKernel` /
`MonteCarloKernel` of the estimators), or a list/tuple of those (several
outputs). Each array leaf is one of

* `PAIR`: a kernel between the two batches, `(n1, n2, ...)` (nngp, ntk and
  any field not named below);
* `ROW`: per-example quantity of `x1` (`cov1`, `mask1`), taken from the
  blocks of the first column (or the diagonal blocks when `x2` is None);
* `COL`: per-example quantity of `x2` (`cov2`, `mask2`), from the first row;
* `CONST`: an array without batch axes (a 0-d NTK of a parameter-free
  network), taken from the first block.

Mirroring a `PAIR` block across the diagonal swaps its two batch axes, and
also the two axes of every spatial pair (`(n1, n2, h, h', w, w')` becomes
`(n2, n1, h', h, w', w)`). Which trailing axes form pairs is known from the
`Kernel`'s `diagonal_spatial` flag; for bare arrays of an unknown layout
with trailing axes, blocks below the diagonal are computed rather than
guessed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import numpy as np

from ntcore.errors import BatchError
from ntcore.kernel import Kernel

PAIR, ROW, COL, CONST = "pair", "row", "col", "const"
_ROW_NAMES = ("cov1", "mask1")
_COL_NAMES = ("cov2", "mask2")


@dataclasses.dataclass(frozen=True)
class Leaf:
  """One array of the output.

  Attributes:
    key: its path in the output tree (`jax.tree_util.keystr`).
    role: PAIR, ROW, COL or CONST.
    axis: the batch axis (ROW/COL leaves).
    mirror: axis permutation that transposes a PAIR block, or None when the
      layout is unknown.
  """

  key: str
  role: str
  axis: int = 0
  mirror: Optional[tuple[int, ...]] = None


def _is_kernel(x) -> bool:
  return isinstance(x, Kernel)


def _field(path) -> Optional[str]:
  for entry in reversed(path):
    if isinstance(entry, jax.tree_util.GetAttrKey):
      return entry.name
  return None


def _pair_mirror(ndim: int, diagonal_spatial: Optional[bool]
                 ) -> Optional[tuple[int, ...]]:
  """Permutation transposing a `(n1, n2, <spatial>)` block, if known."""
  if ndim == 2:
    return (1, 0)
  if diagonal_spatial is None:
    return None
  if diagonal_spatial:
    return (1, 0) + tuple(range(2, ndim))
  if (ndim - 2) % 2:
    return None
  perm = [1, 0]
  for a in range(2, ndim, 2):
    perm += [a + 1, a]
  return tuple(perm)


def describe(out: Any, single_name: Optional[str],
             diagonal_spatial: Optional[bool] = None) -> list[Leaf]:
  """The leaves of `out` (arrays or ShapeDtypeStructs), in pytree order.

  Args:
    out: one block's output.
    single_name: the field a bare array stands for (`get="cov1"`).
    diagonal_spatial: layout of bare PAIR arrays, when known (from the
      `Kernel` an analytic kernel function would return).

  Raises:
    BatchError: a `Kernel` whose `cov1` is a full `(n1, n1)` covariance
      (`diagonal_batch=False`), which blocks cannot supply.
  """
  leaves = []
  nodes = jax.tree_util.tree_flatten_with_path(out, is_leaf=_is_kernel)[0]
  for path, node in nodes:
    if _is_kernel(node):
      if not node.diagonal_batch:
        raise BatchError(
            "ntcore.batch needs per-example variances in the output Kernel "
            "(diagonal_batch=True), but this kernel_fn returns the full "
            "(n1, n1) cov1 (diagonal_batch=False was asked for, or a layer "
            "mixes examples), which independent blocks cannot provide. Call "
            "kernel_fn without batching, or leave diagonal_batch unset.")
      for sub, leaf in jax.tree_util.tree_flatten_with_path(node)[0]:
        leaves.append(_leaf(path + sub, _field(sub), leaf,
                            node.batch_axis, node.diagonal_spatial))
    else:
      leaves.append(_leaf(path, _field(path) or single_name, node, 0,
                          diagonal_spatial))
  return leaves


def _leaf(path, name, leaf, batch_axis, diagonal_spatial) -> Leaf:
  key = jax.tree_util.keystr(path)
  ndim = len(np.shape(leaf))
  if name in _ROW_NAMES or name in _COL_NAMES:
    axis = batch_axis if name.startswith("mask") else 0
    return Leaf(key, ROW if name in _ROW_NAMES else COL, axis)
  if ndim < 2:
    return Leaf(key, CONST)
  return Leaf(key, PAIR, mirror=_pair_mirror(ndim, diagonal_spatial))


def full_shape(leaf: Leaf, block_shape: tuple, n1: int, n2: int) -> tuple:
  """Shape of `leaf` in the whole kernel."""
  shape = list(block_shape)
  if leaf.role == PAIR:
    shape[0], shape[1] = n1, n2
  elif leaf.role in (ROW, COL):
    shape[leaf.axis] = n1 if leaf.role == ROW else n2
  return tuple(shape)


def fix_static_shapes(out: Any, n1: int, n2: int) -> Any:
  """Sets the batch sizes of `shape1`/`shape2` of every `Kernel` in `out`."""
  def fix(node):
    if not _is_kernel(node):
      return node

    def resize(shape, n):
      if isinstance(shape, list):  # one shape per input of a parallel layer
        return [resize(s, n) for s in shape]
      if not shape:
        return shape
      shape = list(shape)
      shape[node.batch_axis] = n
      return tuple(shape)

    return node.replace(shape1=resize(node.shape1, n1),
                        shape2=resize(node.shape2, n2))
  return jax.tree_util.tree_map(fix, out, is_leaf=_is_kernel)
