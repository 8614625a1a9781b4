"""Masked inputs of the finite network: `MaskedArray` and how layers carry it.

`apply_fn(params, x, mask_constant=c)` masks the entries of `x` equal to `c`
(`jnp.nan` masks NaNs): they are zeroed before every layer, and each layer
maps the mask of its input to the mask of its output with the same
`mask_fn` that carries `Kernel.mask1`/`mask2` through `kernel_fn`. As in
Neural Tangents, a masked network returns a `MaskedArray`;
`unmask_fn(apply_fn)` returns plain arrays with the masked entries zeroed.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Optional

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class MaskedArray:
  """An array (or a list of them) with a boolean mask, True where masked.

  Attributes:
    masked_value: the values, masked entries already zeroed.
    mask: a boolean array broadcastable to `masked_value` (or a list of
      them, or None where nothing is masked).
  """

  masked_value: Any
  mask: Any


jax.tree_util.register_dataclass(MaskedArray,
                                 data_fields=["masked_value", "mask"],
                                 meta_fields=[])


def zero_masked(x, mask):
  """`x` with the entries where `mask` is True set to zero."""
  if mask is None:
    return x
  return jnp.where(mask, 0, x)


def _mask_of(x, mask_constant):
  if mask_constant is None:
    return None
  x = jnp.asarray(x)
  if isinstance(mask_constant, float) and mask_constant != mask_constant:
    return jnp.isnan(x)
  return x == mask_constant


def split(inputs, mask_constant=None, mask=None):
  """`(values, masks)` of a layer's inputs: an array, a `MaskedArray` or a list.

  A `MaskedArray` keeps its own mask; otherwise `mask` (same structure as
  `inputs`) or the entries equal to `mask_constant` are masked. Masked
  entries of `values` are zero. `masks` is None when nothing is masked.
  """
  if isinstance(inputs, (list, tuple)):
    if isinstance(mask, (list, tuple)):
      pairs = [split(x, mask_constant, m) for x, m in zip(inputs, mask)]
    else:
      pairs = [split(x, mask_constant, mask) for x in inputs]
    values = [p[0] for p in pairs]
    masks = [p[1] for p in pairs]
    return values, (None if all(m is None for m in masks) else masks)
  if isinstance(inputs, MaskedArray):
    value, m = inputs.masked_value, inputs.mask
    if isinstance(value, (list, tuple)):
      return split(list(value), None, m)
    return zero_masked(value, m), m
  m = mask if mask is not None else _mask_of(inputs, mask_constant)
  return zero_masked(inputs, m), m


def join(values, masks):
  """What a layer returns: `values`, or a `MaskedArray` when anything is masked."""
  if masks is None:
    return values
  return MaskedArray(values, masks)


def branches(inputs):
  """A list input (possibly one `MaskedArray` of lists) as a list of inputs."""
  if isinstance(inputs, MaskedArray) and isinstance(inputs.masked_value,
                                                    (list, tuple)):
    masks = inputs.mask
    if not isinstance(masks, (list, tuple)):
      masks = [masks] * len(inputs.masked_value)
    return [join(v, m) for v, m in zip(inputs.masked_value, masks)]
  return inputs


def unmask(x):
  """Plain arrays from `x`: the masked entries of every `MaskedArray` zeroed."""
  if isinstance(x, MaskedArray):
    if isinstance(x.masked_value, (list, tuple)):
      return [unmask(b) for b in branches(x)]
    return zero_masked(x.masked_value, x.mask)
  if isinstance(x, list):
    return [unmask(xi) for xi in x]
  if isinstance(x, tuple) and not hasattr(x, "_fields"):
    return tuple(unmask(xi) for xi in x)
  return x


def unmask_fn(fn):
  """Wraps `fn` (an `apply_fn`) to return arrays instead of `MaskedArray`s.

  Masked entries are zeroed, as in Neural Tangents' `stax.unmask_fn`; use it
  to feed a masked network to `nt.empirical_kernel_fn` or
  `nt.monte_carlo_kernel_fn`.
  """
  @functools.wraps(fn)
  def fn_no_mask(*args, **kwargs):
    return unmask(fn(*args, **kwargs))
  return fn_no_mask


@functools.lru_cache(maxsize=None)
def _takes_mask(fn) -> bool:
  try:
    params = inspect.signature(fn).parameters.values()
  except (TypeError, ValueError):
    return False
  return any(p.name == "mask" or p.kind is p.VAR_KEYWORD for p in params)


def takes_mask(fn) -> bool:
  """Whether `fn` accepts a `mask=` keyword (explicitly or via `**kwargs`)."""
  try:
    return _takes_mask(fn)
  except TypeError:  # unhashable callable
    return _takes_mask.__wrapped__(fn)


def masking_apply_fn(apply_fn, propagate):
  """`apply_fn` with NT's masking keywords (`mask_constant=`, `mask=`).

  Args:
    apply_fn: the layer's own `apply_fn(params, x, **kwargs)`; it receives
      inputs with masked entries zeroed, and `mask=` if it accepts it.
    propagate: `(masks, input_shapes, output_shapes) -> output masks`, the
      same function that carries masks through the layer's kernel.

  Returns:
    `apply_fn(params, inputs, *, mask_constant=None, mask=None, **kwargs)`,
    returning a `MaskedArray` when any input entry is masked.
  """
  passes_mask = takes_mask(apply_fn)

  @functools.wraps(apply_fn)
  def apply_with_masking(params, inputs, *, mask_constant=None,
                         mask: Optional[Any] = None, **kwargs):
    if (mask_constant is None and mask is None
        and not _has_masked(inputs)):
      return apply_fn(params, inputs, **kwargs)
    values, masks = split(inputs, mask_constant, mask)
    if masks is None:
      return apply_fn(params, values, **kwargs)
    if passes_mask:
      out = apply_fn(params, values, mask=masks, **kwargs)
    else:
      out = apply_fn(params, values, **kwargs)
    return join(out, propagate(masks, _shapes(values), _shapes(out)))

  apply_with_masking._ntcore_masking = True
  return apply_with_masking


def _shapes(x):
  if isinstance(x, (list, tuple)):
    return [tuple(jnp.shape(xi)) for xi in x]
  return tuple(jnp.shape(x))


def _has_masked(inputs) -> bool:
  if isinstance(inputs, MaskedArray):
    return True
  if isinstance(inputs, (list, tuple)):
    return any(_has_masked(x) for x in inputs)
  return False
