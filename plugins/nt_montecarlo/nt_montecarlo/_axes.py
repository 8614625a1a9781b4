"""Output-axis bookkeeping of empirical kernels: traced, diagonal, paired.

An empirical kernel pairs the outputs `f(x1)` and `f(x2)` (same number of
axes). Each output axis `i` ends up in one of three ways:

* in `trace_axes`: contracted (summed over the matching pair, then divided
  by the axis size), absent from the result;
* in `diagonal_axes`: only matching positions kept, present once;
* otherwise: present twice, `f(x1)`'s axis followed by `f(x2)`'s.

The result keeps the order of the output axes, so for outputs `(N, H, C)`
with `trace_axes=(-1,)` and `diagonal_axes=(1,)` it is `(N1, N2, H)`. This is
Neural Tangents' layout (`empirical.py`, "All other axes are present twice").
The index lists built here drive both the contraction of two arrays
(`Pairing.contract`, one `lax.dot_general`) and the reduction of a full
kernel (`Pairing.reduce`, one `jnp.einsum`).
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax

from ntcore import ShapeError

Axes = Union[int, Sequence[int]]


def canonical_axes(axes: Axes, ndim: int, name: str) -> tuple[int, ...]:
  """`axes` as sorted, unique, non-negative ints; checked against `ndim`."""
  axes = (axes,) if isinstance(axes, int) else tuple(axes)
  for a in axes:
    if not -ndim <= a < ndim:
      raise ShapeError(
          f"{name}={axes!r} names axis {a}, but the function's output has "
          f"{ndim} axes. Pass axes in [{-ndim}, {ndim}) (for a scalar output "
          f"use {name}=()).")
  return tuple(sorted({a % ndim for a in axes}))


class Pairing:
  """How the axes of two outputs of shapes `shape1`, `shape2` are paired.

  Attributes:
    sub1, sub2: einsum index lists of the two outputs' axes.
    out: index list of the result.
    size: product of the traced axes' sizes (the kernel is divided by it).
    shape: shape of the result.
  """

  def __init__(self, shape1: tuple, shape2: tuple, trace_axes: Axes,
               diagonal_axes: Axes):
    ndim = len(shape1)
    if len(shape2) != ndim:
      raise ShapeError(
          f"f(x1) has shape {tuple(shape1)} and f(x2) has shape "
          f"{tuple(shape2)}; an empirical kernel needs outputs with the same "
          f"number of axes.")
    trace = canonical_axes(trace_axes, ndim, "trace_axes")
    diag = canonical_axes(diagonal_axes, ndim, "diagonal_axes")
    if set(trace) & set(diag):
      raise ShapeError(
          f"Axes {sorted(set(trace) & set(diag))} are in both trace_axes and "
          f"diagonal_axes; an axis is either traced or diagonal, not both.")
    for i in trace + diag:
      if shape1[i] != shape2[i]:
        raise ShapeError(
            f"Axis {i} is traced or diagonal, so f(x1) and f(x2) must have "
            f"the same size there, got shapes {tuple(shape1)} and "
            f"{tuple(shape2)}. Leave it out of trace_axes/diagonal_axes.")
    self.ndim = ndim
    self.sub1 = list(range(ndim))
    self.sub2 = [i if i in trace or i in diag else ndim + i
                 for i in range(ndim)]
    self.out, shape = [], []
    for i in range(ndim):
      if i in diag:
        self.out.append(i)
        shape.append(shape1[i])
      elif i not in trace:
        self.out += [i, ndim + i]
        shape += [shape1[i], shape2[i]]
    self.shape = tuple(shape)
    self.size = math.prod(shape1[i] for i in trace)

  def contract(self, a, b, n_extra: int = 0):
    """Kernel of `a: shape1 + E` with `b: shape2 + E`, summing the `E` axes.

    `E` (`n_extra` trailing axes, e.g. a parameter's shape in a Jacobian) is
    contracted together with the traced axes.

    One `lax.dot_general` (diagonal axes as batch axes), then a transpose
    of the (small) result into `out`'s order, rather than `jnp.einsum`
    asked for `out`'s order directly: measured on CPU (JAX 0.10.2, 2
    cores), a (32, 10, 36864) Jacobian contracted with itself took 200 ms
    by `einsum("ncP,mdP->nmcd")` and 130 ms this way, and the bench.py
    workload `g_empirical_ntk_impl1` (Jacobian contraction of a CNN) went
    from 1.65x to about 1.0x Neural Tangents' time. With the traced axes
    next to `E` (e.g. `trace_axes=(-1,)` or `()`) both operands are
    (outputs, parameters) matrices and this is a plain `A B^T`. A large
    `a` is contracted in slices of its largest `E` axis (`chunks`).
    """
    if n_extra:
      ax = max(range(a.ndim - n_extra, a.ndim), key=lambda i: a.shape[i])
      bounds = chunks(a.shape[ax], max(a.size * a.dtype.itemsize,
                                       b.size * b.dtype.itemsize))
      if len(bounds) > 1:
        return functools.reduce(operator.add, [
            self._dot(lax.slice_in_dim(a, lo, hi, axis=ax),
                      lax.slice_in_dim(b, lo, hi, axis=ax), n_extra)
            for lo, hi in bounds])
    return self._dot(a, b, n_extra)

  def _dot(self, a, b, n_extra: int):
    n = self.ndim
    diag = [i for i in range(n) if self.sub2[i] == i and i in self.out]
    trace = [i for i in range(n) if self.sub2[i] == i and i not in self.out]
    free = [i for i in range(n) if self.sub2[i] != i]
    contracting = trace + list(range(n, n + n_extra))
    dtype = jnp.result_type(a, b)  # `jnp.einsum`'s promotion.
    a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
    k = lax.dot_general(a, b, ((contracting, contracting), (diag, diag)))
    # `k` is ordered (diag, free of a, free of b); map that to `out`.
    order = diag + free + [n + i for i in free]
    k = jnp.transpose(k, [order.index(o) for o in self.out])
    return k / self.size

  def reduce(self, full):
    """Traces and diagonalizes a full kernel of shape `shape1 + shape2`."""
    return jnp.einsum(full, self.sub1 + self.sub2, self.out) / self.size


# Jacobians above this size are contracted in slices (see `chunks`).
CHUNK_BYTES = 8 << 20


def chunks(size: int, nbytes: int) -> list:
  """`[(lo, hi), ...]` cutting an axis of `size` so that a `nbytes` array
  is contracted in slices of about `CHUNK_BYTES` (one slice if it is small).

  Contracting a Jacobian `J` (outputs x parameters) with itself needs `J`
  in two layouts (XLA:CPU's dots take row-major `(M, K) x (K, N)`), so the
  whole product holds `J` two or three times. Summed over slices of the
  parameter axis, only the slices are copied. Measured on the bench.py
  workload `g_empirical_ntk_impl1` (JAX 0.10.2, 2 cores): temporaries 144 ->
  72 MiB, steady time 0.19 -> 0.17 s, compile 0.22 -> 0.42 s; 4 MiB slices
  saved no more memory and doubled the compile time again.
  """
  k = min(size, -(-nbytes // CHUNK_BYTES))
  if k <= 1:
    return [(0, size)]
  step = -(-size // k)
  return [(lo, min(lo + step, size)) for lo in range(0, size, step)]


def vmap_axis(axis, ndim: int, name: str) -> int:
  """A `vmap_axes` entry for an array of `ndim` axes, made non-negative.

  Raises:
    ShapeError: for an axis that is not an int in `[-ndim, ndim)` (without
      this, `vmap` would batch the wrong axis or XLA's `dot_general` fail).
  """
  if isinstance(axis, bool) or not isinstance(axis, int):
    raise ShapeError(
        f"{name}={axis!r}: a vmap_axes entry must be an int axis or None, "
        f"got {type(axis).__name__}.")
  if ndim == 0:  # a scalar has no batch axis; nothing to vmap over
    return 0
  if not -ndim <= axis < ndim:
    raise ShapeError(
        f"{name}={axis} is out of range for an array with {ndim} axes: pass "
        f"an axis in [{-ndim}, {ndim}) (the batch axis, usually 0), or "
        f"vmap_axes=None.")
  return axis % ndim


def check_batch_sizes(named_trees) -> None:
  """The `vmap_axes` of every input, output and keyword must index one size.

  Args:
    named_trees: `(name, tree, axes)` triples: shape trees (arrays or
      `ShapeDtypeStruct`s) and their canonical batch axes (None: skipped).

  Raises:
    ShapeError: naming the entries whose batch sizes differ.
  """
  sizes = []
  for name, tree, axes in named_trees:
    if axes is None:
      continue
    leaves = jax.tree_util.tree_leaves(tree)
    for leaf, axis in zip(leaves, jax.tree_util.tree_leaves(axes)):
      shape = jnp.shape(leaf)
      if shape:
        sizes.append((name, shape, axis, shape[axis]))
  if len({s[-1] for s in sizes}) > 1:
    listed = "; ".join(f"{n} of shape {tuple(sh)} has size {z} on axis {a}"
                       for n, sh, a, z in sizes)
    raise ShapeError(
        f"vmap_axes must name the batch axis of every input and output, but "
        f"the named axes have different sizes: {listed}. Pass the axis that "
        f"indexes examples (usually 0), or vmap_axes=None.")
