"""`Kernel`: what flows between kernel rules.

A `Kernel` holds the second moments of a layer's (infinitely wide)
pre-activations for two batches of inputs `x1` (n1 examples) and `x2`
(n2 examples), plus static metadata describing their layout.

Layout of the arrays (batch axes first, then spatial axes; the channel axis
is gone because at infinite width every channel has the same moments):

* `diagonal_spatial=False`: spatial axes are interleaved pairs,
  `nngp: (n1, n2, h, h', w, w', ...)`.
* `diagonal_spatial=True`: only same-position pairs are kept,
  `nngp: (n1, n2, h, w, ...)` (NT paper section 3.1).
* `diagonal_batch=True`: `cov1: (n1, <spatial>)` holds only the variance of
  each example; `False`: `cov1: (n1, n1, <spatial>)`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax

Array = Any


@dataclasses.dataclass(frozen=True)
class Kernel:
  """Covariances of a layer's outputs over two input batches.

  Attributes:
    nngp: covariance E[f(x1) f(x2)] of the outputs, `(n1, n2, <spatial>)`.
    ntk: neural tangent kernel, same shape as `nngp`; None when only the
      NNGP was asked for.
    cov1: covariance of `x1` with itself, `(n1, <spatial>)` when
      `diagonal_batch` else `(n1, n1, <spatial>)`.
    cov2: the same for `x2`; None when `x2` is None (then `x2 = x1`).
    mask1: boolean mask of `x1`'s masked entries (channel axis kept with size
      1), or None when nothing is masked.
    mask2: the same for `x2`.
    x1_is_x2: True when the kernel is of `x1` with itself (`x2` was None).
      Decided statically, never by comparing array values.
    is_gaussian: True when the outputs are Gaussian (after an affine layer),
      which nonlinearity rules require of their input.
    is_reversed: True when the spatial axes of the arrays are stored in
      reversed order (a layout some convolutional rules use to avoid
      transposes); always False in fully-connected networks.
    is_input: True for the kernel of the raw inputs, before any layer.
    diagonal_batch: whether `cov1`/`cov2` hold only per-example variances.
    diagonal_spatial: whether only same-position spatial pairs are kept.
    shape1: shape of the finite-width activations of `x1` at this layer.
    shape2: shape of the finite-width activations of `x2` at this layer.
    batch_axis: batch axis of the finite activations.
    channel_axis: channel axis of the finite activations.
  """

  nngp: Array
  ntk: Optional[Array]
  cov1: Array
  cov2: Optional[Array]
  mask1: Optional[Array] = None
  mask2: Optional[Array] = None
  x1_is_x2: bool = dataclasses.field(default=False, metadata=dict(static=True))
  is_gaussian: bool = dataclasses.field(default=False, metadata=dict(static=True))
  is_reversed: bool = dataclasses.field(default=False, metadata=dict(static=True))
  is_input: bool = dataclasses.field(default=False, metadata=dict(static=True))
  diagonal_batch: bool = dataclasses.field(default=True, metadata=dict(static=True))
  diagonal_spatial: bool = dataclasses.field(default=False, metadata=dict(static=True))
  shape1: tuple = dataclasses.field(default=(), metadata=dict(static=True))
  shape2: tuple = dataclasses.field(default=(), metadata=dict(static=True))
  batch_axis: int = dataclasses.field(default=0, metadata=dict(static=True))
  channel_axis: int = dataclasses.field(default=-1, metadata=dict(static=True))

  def replace(self, **changes) -> "Kernel":
    """Returns a copy with `changes` applied (the Kernel itself is frozen)."""
    return dataclasses.replace(self, **changes)

  @property
  def n_spatial(self) -> int:
    """Number of spatial axes of the finite activations."""
    return max(len(self.shape1) - 2, 0)

  def scale_preactivations(self, w_var: float, b_var: Optional[float] = None
                           ) -> "Kernel":
    """Covariances of `W z + b` for `W ~ N(0, w_var / fan_in)`, `b ~ N(0, b_var)`.

    `nngp -> w_var * nngp + b_var` (likewise `cov1`, `cov2`); the NTK is left
    to the caller because its update depends on the parameterization.
    """
    def affine(m):
      if m is None:
        return None
      m = w_var * m
      return m if b_var is None else m + b_var
    return self.replace(nngp=affine(self.nngp), cov1=affine(self.cov1),
                        cov2=affine(self.cov2))


_DATA = [f.name for f in dataclasses.fields(Kernel)
         if not f.metadata.get("static")]
_META = [f.name for f in dataclasses.fields(Kernel) if f.metadata.get("static")]
jax.tree_util.register_dataclass(Kernel, data_fields=_DATA, meta_fields=_META)
