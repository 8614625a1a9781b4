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
All three kinds of contraction are written as one `jnp.einsum` over integer
index lists built here.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import jax.numpy as jnp

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
    """
    extra = list(range(2 * self.ndim, 2 * self.ndim + n_extra))
    return jnp.einsum(a, self.sub1 + extra, b, self.sub2 + extra,
                      self.out) / self.size

  def reduce(self, full):
    """Traces and diagonalizes a full kernel of shape `shape1 + shape2`."""
    return jnp.einsum(full, self.sub1 + self.sub2, self.out) / self.size
