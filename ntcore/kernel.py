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
* `is_reversed=True`: the spatial groups are stored last axis first,
  `nngp: (n1, n2, w, w', h, h')`.

Rules should not re-derive this layout: the methods under "layout" below
(`batch_ndim`, `arrays`, `stored_spatial_axes`, `stored_dims`, `natural`,
`store`, `same_positions`, `pair`, `mask_positions`, ...) are what every
spatial rule needs, and `docs/writing-a-plugin.md` shows a pooling layer
written with them.

The fields come in NT's positional order, and the methods and operators are
NT's (`slice`, `reverse`, `transpose`, `mask`, `dot_general`, `k[...]`,
`k * s`, `k + s`); they also keep `shape1`/`shape2` and the masks in step
with the arrays, so that a transformed kernel describes its activations.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Optional, Sequence

import jax

from ntcore import _kernel_dot, _kernel_index, _layout, _malloc
from ntcore.errors import NtcoreError

# Every path into the core's computations imports this module, and JAX is
# imported now: from here on, each compilation gives its freed heap back.
_malloc.trim_after_compiles()

Array = Any


class KernelArithmeticError(NtcoreError, TypeError):
  """`Kernel` arithmetic with an operand that is not a scalar."""


_ARITHMETIC = (
    "Kernel {op} {other}: NT's Kernel arithmetic takes a scalar s, the kernel "
    "of the outputs scaled by s (k * s, k / s) or shifted by an independent "
    "N(0, s^2) bias (k + s, k - s). To combine two kernels use "
    "stax.FanInSum / stax.FanInProd, or add their arrays (k1.nngp + k2.nngp).")


@dataclasses.dataclass(frozen=True)
class Kernel:
  """Covariances of a layer's outputs over two input batches.

  Fields in NT's positional order; all but the first four have defaults.

  Attributes:
    nngp: covariance E[f(x1) f(x2)] of the outputs, `(n1, n2, <spatial>)`.
    ntk: neural tangent kernel, same shape as `nngp` (or a 0-d zero before
      any parameter); None when only the NNGP was asked for.
    cov1: covariance of `x1` with itself, `(n1, <spatial>)` when
      `diagonal_batch` else `(n1, n1, <spatial>)`.
    cov2: the same for `x2`; None when `x2` is None (then `x2 = x1`).
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
    mask1: boolean mask of `x1`'s masked entries, broadcastable to `shape1`
      with as many axes (the channel axis usually of size 1), or None when
      nothing is masked.
    mask2: the same for `x2`.
  """

  nngp: Array
  ntk: Optional[Array]
  cov1: Array
  cov2: Optional[Array]
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
  mask1: Optional[Array] = None
  mask2: Optional[Array] = None

  # --- containers -------------------------------------------------------
  def replace(self, **changes) -> "Kernel":
    """Returns a copy with `changes` applied (the Kernel itself is frozen)."""
    return dataclasses.replace(self, **changes)

  def asdict(self) -> dict[str, Any]:
    """`{field: value}` for every field, in positional order (not deep-copied)."""
    return {name: getattr(self, name) for name in GET_FIELDS}

  def astuple(self) -> tuple[Any, ...]:
    """Every field's value, in positional order (not deep-copied)."""
    return tuple(getattr(self, name) for name in GET_FIELDS)

  @property
  def n_spatial(self) -> int:
    """Number of spatial axes of the finite activations."""
    return max(len(self.shape1) - 2, 0)

  # --- affine maps --------------------------------------------------------
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

  def scale_outputs(self, scale) -> "Kernel":
    """The kernel of `scale * f`: every covariance, NTK included, times `scale^2`."""
    var = _scalar(scale, "*") ** 2
    out = self.scale_preactivations(var)
    return out.replace(ntk=None if self.ntk is None else var * self.ntk)

  def add_bias(self, std) -> "Kernel":
    """The kernel of `f + b`, `b ~ N(0, std^2)` shared by all entries of an example.

    `nngp`, `cov1`, `cov2` gain `std^2`; the NTK is unchanged (`b` is fixed).
    """
    return self.scale_preactivations(1., _scalar(std, "+") ** 2)

  # NT's operators: `*`/`/` scale the outputs, `+`/`-` add a bias of that
  # standard deviation (so `-` adds too), unary `-`/`+` change nothing.
  def __mul__(self, other) -> "Kernel":
    return self.scale_outputs(other)

  __rmul__ = __mul__

  def __truediv__(self, other) -> "Kernel":
    return self.scale_outputs(1. / _scalar(other, "/"))

  def __add__(self, other) -> "Kernel":
    return self.add_bias(other)

  __radd__ = __add__

  def __sub__(self, other) -> "Kernel":
    return self.add_bias(_scalar(other, "-"))

  __rsub__ = __sub__

  def __neg__(self) -> "Kernel":
    return self

  __pos__ = __neg__

  # --- layout -------------------------------------------------------------
  def batch_ndim(self, field: str) -> int:
    """Leading batch axes of array `field`: 2, or 1 for `cov1`/`cov2` when
    `diagonal_batch` (`(n1, <spatial>)` instead of `(n1, n1, <spatial>)`)."""
    return _layout.batch_ndim(self, field)

  def arrays(self):
    """Yields `(field, array, batch_ndim)` for each covariance with axes.

    Fields in the order `nngp, ntk, cov1, cov2`; a `None` array and the 0-d
    `ntk` of a network without parameters so far are skipped. A rule that
    treats every covariance alike is then one loop::

        k.replace(**{f: op(m, b) for f, m, b in k.arrays()})
    """
    return _layout.arrays(self)

  @property
  def group_size(self) -> int:
    """Array axes per spatial axis: 2 (`(h, h')`), or 1 when `diagonal_spatial`."""
    return _layout.group_size(self)

  def spatial_shape(self) -> tuple[int, ...]:
    """Spatial sizes of `x1`'s activations, in their natural order."""
    return _layout.spatial_shape(self)

  def stored_spatial_axes(self) -> list[int]:
    """The activations' axis held by each stored spatial group, in stored order.

    For `shape1 = (n, h, w, c)`: `[1, 2]`, or `[2, 1]` when `is_reversed`.
    """
    return _layout.stored_spatial_axes(self)

  def stored_dims(self) -> list[int]:
    """The spatial dim (0 = first spatial axis) of each stored group:
    `[0, 1, ...]`, or reversed when `is_reversed`. Index per-dim parameters
    (window sizes, strides) with it to compute in the stored order."""
    return _layout.stored_dims(self)

  def reverse(self) -> "Kernel":
    """The same kernel with its spatial groups stored in the other order.

    `nngp: (n1, n2, h, h', w, w')` becomes `(n1, n2, w, w', h, h')` and
    `is_reversed` flips; the activations it describes do not change.
    """
    return _layout.reverse(self)

  def natural(self) -> "Kernel":
    """The kernel with its groups in the activations' order (`is_reversed=False`)."""
    return _layout.natural(self)

  def permute_groups(self, perm: Sequence[int]) -> "Kernel":
    """Moves stored group `perm[i]` to position `i` in every array.

    Only the arrays move (no metadata changes): for rules that compute in one
    order and must store in another. See `store` for the usual case.
    """
    return _layout.permute_groups(self, perm)

  def store(self, stored: Sequence[int], perm: Optional[Sequence[int]] = None,
            reversed_: bool = False) -> "Kernel":
    """Lays out a rule's output whose groups hold input dims `stored`.

    A rule that worked in the order `stored` (e.g. `k.stored_dims()`) calls
    this last: output dim `i` is input dim `perm[i]` (None: the identity) and
    the groups end up stored reversed iff `reversed_`, with at most one
    transpose.
    """
    return _layout.store(self, stored, perm, reversed_)

  @staticmethod
  def reverse_groups(m: Array, batch_ndim: int, group: int) -> Array:
    """One array with its spatial groups (of `group` axes) in reversed order."""
    return _layout.reverse_groups(m, batch_ndim, group)

  @staticmethod
  def same_positions(m: Array, batch_ndim: int) -> Array:
    """`(B, h, h', w, w')` -> `(B, h, w)`: the same-position entries of an array
    with `batch_ndim` leading batch axes."""
    return _layout.same_positions(m, batch_ndim)

  @staticmethod
  def embed_same_positions(d: Array, batch_ndim: int) -> Array:
    """`(B, h, w)` -> `(B, h, h', w, w')`, zero off the spatial diagonal."""
    return _layout.embed_same_positions(d, batch_ndim)

  def variances(self, field: str = "cov1") -> Array:
    """Per-example, per-position variances `(n, <spatial>)` of `cov1`/`cov2`
    (the same-example, same-position entries), whatever the layout."""
    return _layout.variances(getattr(self, field), self.diagonal_batch,
                             self.diagonal_spatial, self.n_spatial)

  def pair(self, a: Array, b: Array, one_batch_axis: bool = False
           ) -> tuple[Array, Array]:
    """Broadcasts per-position arrays `(n_a, <spatial>)`, `(n_b, <spatial>)`
    so that `a * b` has this kernel's covariance layout: `(n_a, n_b, ...)`,
    or one batch axis (`one_batch_axis`, a diagonal-batch `cov1`); spatial
    axes interleaved `(h, h', ...)` unless `diagonal_spatial`."""
    return _layout.pair(a, b, self.diagonal_spatial, one_batch_axis)

  def mask_positions(self) -> tuple[Optional[Array], Optional[Array]]:
    """`(p1, p2)`, `(n, <spatial as stored>)` booleans: True where every
    channel of a position is masked; `(None, None)` when nothing is."""
    return _layout.mask_positions(self)

  def transpose(self, axes: Optional[Sequence[int]] = None) -> "Kernel":
    """Permutes the spatial groups of the arrays as `numpy.transpose(axes)`.

    `axes` is a permutation of `range(n_spatial)` over the spatial groups as
    stored (batch axes stay first); None keeps the order, as in NT. The
    result is the kernel of the activations with those spatial axes
    permuted; `shape1`, `shape2` and the masks follow.
    """
    return _kernel_index.transpose(self, axes)

  def slice(self, n1_slice: slice, n2_slice: slice) -> "Kernel":
    """The kernel of `x1[n1_slice]` and `x2[n2_slice]` (slices of the batch).

    With `x2=None` and two equal slices the result is again the kernel of
    one batch with itself; otherwise `cov2` is sliced out of `cov1`.
    """
    return _kernel_index.slice_batches(self, n1_slice, n2_slice)

  def __getitem__(self, idx) -> "Kernel":
    """The kernel of `x1[idx]` and `x2[idx]` (NumPy basic indexing).

    `idx` holds ints, slices, `...` and at most one 1-d sequence of ints, one
    entry per axis of the activations. The channel axis must be kept whole
    and the batch axis indexed by a slice.
    """
    return _kernel_index.getitem(self, idx)

  def select(self, idx) -> "Kernel":
    """`k[idx]` that also takes one 1-d sequence of ints among the entries.

    The sequence picks those positions of its axis in that order (outer
    indexing: one axis, as NumPy does for a single sequence); the channel
    axis stays whole and the batch axis is indexed by a slice or sequence.
    """
    return _kernel_index.getitem(self, idx, allow_arrays=True)

  def mask(self, mask1: Optional[Array], mask2: Optional[Array]) -> "Kernel":
    """Sets the masks and zeroes every covariance entry of a masked position.

    A position is masked when all its channels are; masks broadcast against
    `shape1`/`shape2`. With `x2=None` a None `mask2` means `mask1`.
    """
    return _layout.remask(self.replace(mask1=mask1, mask2=mask2))

  def dot_general(self, other1: Optional[Array], other2: Optional[Array],
                  is_lhs: bool, dimension_numbers, *,
                  precision=None) -> "Kernel":
    """The kernel of `lax.dot_general` of `x1` with `other1`, `x2` with `other2`.

    `is_lhs`: the constants are the left operands (`dot_general(other, x)`).
    `cov' = other1 . cov . other2` contracted over the paired axes, with the
    output stored in `dot_general`'s axis order (`is_reversed=False`).
    `precision` is that of the contractions (a `lax.Precision`).
    """
    return _kernel_dot.dot_general(self, other1, other2, is_lhs,
                                   dimension_numbers, precision=precision)


def _scalar(value, op: str):
  """`value` if it may multiply a kernel's arrays; a Kernel is refused."""
  if isinstance(value, Kernel):
    raise KernelArithmeticError(_ARITHMETIC.format(op=op, other="Kernel"))
  if not (isinstance(value, numbers.Number) or hasattr(value, "dtype")):
    raise KernelArithmeticError(
        _ARITHMETIC.format(op=op, other=type(value).__name__))
  return value


GET_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Kernel))
"""Every name `kernel_fn(..., get=...)` accepts: each field of `Kernel`."""

_DATA = [f.name for f in dataclasses.fields(Kernel)
         if not f.metadata.get("static")]
_META = [f.name for f in dataclasses.fields(Kernel) if f.metadata.get("static")]
jax.tree_util.register_dataclass(Kernel, data_fields=_DATA, meta_fields=_META)
