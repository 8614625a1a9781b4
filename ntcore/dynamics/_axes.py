"""Axis bookkeeping between targets and kernels, laid out as in NT.

A target array `y_train` has "traced" axes (`trace_axes`, by default the
logit axis) and "sample" axes (all the others). A kernel lacks the traced
axes (it stands for `K ⊗ I` along them) and pairs each sample axis of its
two inputs, interleaved: for `y_train: (n, h, c)` with `trace_axes=(-1,)`
the train-train kernel is `(n, n, h, h)`.

Linear algebra runs on 2D views: the kernel as a `(P1, P2)` matrix (`P` the
product of the sample axes) and targets as `(P, Q)` with the `Q` traced
entries as columns, so that the `C` logits of a classifier share one `n x n`
factorization (NT paper section 3.1) and are solved all at once.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence, Union

import jax.numpy as jnp

from ntcore.errors import ShapeError

Array = jnp.ndarray
Axes = Union[int, Sequence[int]]

KERNEL_SHAPE = (
    "{name} has shape {shape}, but y_train of shape {y_shape} with "
    "trace_axes={trace_axes} needs {expected}: one pair of axes per "
    "non-traced axis of y_train {sample}, interleaved as (n1, n2, h1, h2, "
    "...), and none for the traced axes. If the kernel keeps the output "
    "axis (e.g. an empirical kernel computed with trace_axes=()), pass the "
    "same trace_axes here."
)


def canonical_trace_axes(trace_axes: Axes, ndim: int) -> tuple[int, ...]:
  """Sorted, non-negative `trace_axes` of an `ndim`-dimensional `y_train`."""
  axes = (trace_axes,) if isinstance(trace_axes, int) else tuple(trace_axes)
  for a in axes:
    if not isinstance(a, int) or not -ndim <= a < ndim:
      raise ShapeError(
          f"trace_axes={trace_axes!r} does not fit y_train with {ndim} axes: "
          f"each axis must be an integer in [-{ndim}, {ndim}).")
  canonical = sorted(a % ndim for a in axes)
  if len(set(canonical)) != len(canonical):
    raise ShapeError(f"trace_axes={trace_axes!r} names an axis twice.")
  return tuple(canonical)


@dataclasses.dataclass(frozen=True)
class Layout:
  """Shapes of `y_train` split into sample and traced axes.

  Attributes:
    y_shape: shape of `y_train`.
    trace_axes: its traced axes, sorted and non-negative.
  """

  y_shape: tuple[int, ...]
  trace_axes: tuple[int, ...]

  @classmethod
  def of(cls, y_train: Array, trace_axes: Axes) -> "Layout":
    """The layout of `y_train` with `trace_axes` (checked)."""
    return cls(tuple(y_train.shape),
               canonical_trace_axes(trace_axes, y_train.ndim))

  @property
  def sample_shape(self) -> tuple[int, ...]:
    """Shape of `y_train`'s non-traced axes: the kernel's shape per side."""
    return tuple(s for a, s in enumerate(self.y_shape)
                 if a not in self.trace_axes)

  @property
  def trace_shape(self) -> tuple[int, ...]:
    """Shape of the traced axes (the columns of the 2D view)."""
    return tuple(self.y_shape[a] for a in self.trace_axes)

  def output_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of outputs on inputs whose sample axes are `sample_shape`."""
    shape, rest, trace = [], iter(sample_shape), iter(self.trace_shape)
    for a in range(len(self.y_shape)):
      shape.append(next(trace) if a in self.trace_axes else next(rest))
    return tuple(shape)

  def check_kernel(self, k: Array, name: str, square: bool) -> tuple[int, ...]:
    """Checks a kernel against `y_train`; returns its first-side sample shape.

    Args:
      k: `(n1, n2, h1, h2, ...)` kernel; its second side must be the
        training set's.
      name: the user's name for it, for the message.
      square: also require the first side to be the training set's.

    Raises:
      ShapeError: if the shapes do not fit.
    """
    sample = self.sample_shape
    shape = tuple(getattr(k, "shape", ()))
    ok = len(shape) == 2 * len(sample) and shape[1::2] == sample
    if ok and square:
      ok = shape[::2] == sample
    if not ok:
      pairs = [(str(s) if square else "*", str(s)) for s in sample]
      expected = "(" + ", ".join(", ".join(p) for p in pairs) + ")"
      raise ShapeError(KERNEL_SHAPE.format(
          name=name, shape=shape, y_shape=self.y_shape,
          trace_axes=self._user_trace_axes(), expected=expected,
          sample=sample))
    return shape[::2]

  def to_2d(self, y: Array) -> Array:
    """`(..sample.., ..traced..)`-shaped `y` as a `(P, Q)` matrix."""
    q = len(self.trace_axes)
    y = jnp.moveaxis(y, self.trace_axes, tuple(range(y.ndim - q, y.ndim)))
    return y.reshape((math.prod(self.sample_shape),
                      math.prod(self.trace_shape)))

  def from_2d(self, x: Array, lead: tuple[int, ...],
              sample_shape: tuple[int, ...]) -> Array:
    """Inverse of `to_2d` for `x: lead + (P, Q)` on inputs of `sample_shape`."""
    q, n_lead = len(self.trace_axes), len(lead)
    x = x.reshape(lead + tuple(sample_shape) + self.trace_shape)
    return jnp.moveaxis(x, tuple(range(x.ndim - q, x.ndim)),
                        tuple(n_lead + a for a in self.trace_axes))

  def _user_trace_axes(self) -> tuple[int, ...]:
    return tuple(a - len(self.y_shape) for a in self.trace_axes)


def make_2d(k: Array) -> Array:
  """`(a1, b1, a2, b2, ...)` kernel as the `(a1*a2*.., b1*b2*..)` matrix."""
  n = k.ndim // 2
  k = jnp.transpose(k, tuple(range(0, 2 * n, 2)) + tuple(range(1, 2 * n, 2)))
  return k.reshape((math.prod(k.shape[:n]), math.prod(k.shape[n:])))


def zip_2d(cov: Array, lead: tuple[int, ...],
           sample_shape: tuple[int, ...]) -> Array:
  """`lead + (P, P)` covariance to the kernel layout `lead + (a, a, b, b..)`."""
  n, n_lead = len(sample_shape), len(lead)
  cov = cov.reshape(lead + tuple(sample_shape) * 2)
  order = tuple(range(n_lead)) + tuple(
      a for i in range(n) for a in (n_lead + i, n_lead + n + i))
  return jnp.transpose(cov, order)
