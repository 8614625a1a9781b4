"""The inputs of a batched kernel function, and how they are cut into blocks.

`x1` and `x2` are arrays or pytrees of arrays: a network that starts with
`stax.parallel` takes the list `[xa, xb]`, whose arrays all hold the same
examples. Every leaf is cut along the batch axis, and nothing else about the
two inputs is compared: `x1` and `x2` may differ beyond the batch axis
whenever `kernel_fn` accepts them (a network starting with `Flatten` takes
`(n1, 784)` against `(n2, 28, 28, 1)`), and it is `kernel_fn` that says no.

Concrete inputs are brought to the host once, so that blocks are cut there
and device memory holds one block at a time. Inputs that are tracers (the
batched function called under `jax.jit`, `jax.vmap` or `jax.grad`) stay
tracers, and blocks are cut with `jax.numpy`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ntcore.errors import BatchError


def is_traced(tree: Any) -> bool:
  """Whether any leaf of `tree` is a tracer (a JAX transformation is on)."""
  return any(isinstance(leaf, jax.core.Tracer)
             for leaf in jax.tree_util.tree_leaves(tree))


def is_none(x: Any) -> bool:
  """`x2=None`, also in NT's form of a list of Nones (`[None, None]`)."""
  return x is None or (isinstance(x, (list, tuple))
                       and not jax.tree_util.tree_leaves(x))


def _has_shape(x) -> bool:
  return hasattr(x, "shape") and hasattr(x, "dtype")


def canonical(x: Any, name: str, host: bool) -> Any:
  """`x` as a pytree of arrays: numpy arrays when `host`, else as given.

  A nested list of numbers (not of arrays) is one array, as `np.asarray`
  reads it.

  Raises:
    BatchError: `x` holds no array, or is a ragged nested list of numbers.
  """
  leaves = jax.tree_util.tree_leaves(x)
  if not leaves or not all(_has_shape(l) for l in leaves):
    try:
      x = np.asarray(x)
    except ValueError as e:
      raise BatchError(
          f"{name} is neither an array nor a pytree of arrays ({e}). Pass an "
          f"array, or a list of arrays for a multi-input network.") from None
    if x.dtype == object:
      raise BatchError(
          f"{name} is a {type(x).__name__} of objects, not of numbers or "
          f"arrays. Pass an array, or a list of arrays for a multi-input "
          f"network.")
  if host:
    x = jax.tree_util.tree_map(np.asarray, x)
  return x


def count(x: Any, axis: int, name: str) -> int:
  """The number of examples in `x`: every leaf's size along `axis`.

  Raises:
    BatchError: a leaf without that axis, leaves that disagree on it, or no
      examples at all.
  """
  sizes = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
    where = name + jax.tree_util.keystr(path)
    shape = tuple(leaf.shape)
    if not -len(shape) <= axis < len(shape):
      raise BatchError(
          f"{where} has shape {shape}; ntcore.batch needs a batch axis "
          f"({axis}) to split along. Give every input a batch axis, e.g. "
          f"shape (n, d) for n examples of d features.")
    sizes[where] = shape[axis]
  if len(set(sizes.values())) > 1:
    listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
    raise BatchError(
        f"The arrays of {name} hold different numbers of examples along the "
        f"batch axis ({axis}): {listed}. Every input of a multi-input network "
        f"describes the same examples; give them one batch size.")
  n = next(iter(sizes.values()))
  if n == 0:
    raise BatchError(f"{name} holds no examples (batch axis {axis} has size "
                     f"0); there is no kernel to compute.")
  return n


def take_block(x: Any, axis: int, rows: slice, size: int) -> Any:
  """`x[rows]` along `axis` of every leaf, padded to `size` by repeating
  the last example (so that every block has one shape)."""
  index = np.minimum(np.arange(rows.start, rows.start + size), rows.stop - 1)
  padded = rows.stop - rows.start < size

  def take(a):
    ax = axis % a.ndim
    if isinstance(a, np.ndarray):
      return np.take(a, index, axis=ax)
    if not padded:
      return lax.slice_in_dim(a, rows.start, rows.stop, axis=ax)
    return jnp.take(a, index, axis=ax)

  return jax.tree_util.tree_map(take, x)
