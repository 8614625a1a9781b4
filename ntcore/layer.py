"""The layer protocol: `Layer(init_fn, apply_fn, kernel_fn)` and how to build one.

A plugin author writes two things for a layer: the finite rule
(`init_fn`, `apply_fn`) and the kernel rule (`rule(k: Kernel, **kwargs) ->
Kernel`), and hands them to `make_layer` together with `Requirements` — what
the rule needs of its input kernel, as data (`ntcore.requirements`). The
engine (`ntcore/_network/`) does the rest: turning raw inputs into the input
`Kernel`, choosing which covariance blocks to track (NT paper section 3.1),
checking requirements, propagating shapes and masks.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Protocol

from ntcore import _prng, masked
from ntcore._network import masking
from ntcore._network.nodes import KernelFn, LeafKernelFn
from ntcore.diagonal import to_diag
# Requirements live in their own module; these names stay importable here.
from ntcore.requirements import GAUSSIAN_INPUT, Diag, Need, Requirements

__all__ = ["ApplyFn", "Diag", "GAUSSIAN_INPUT", "InitFn", "KernelRule",
           "Layer", "MaskFn", "Need", "Requirements", "as_layer",
           "elementwise_layer", "layer_of", "make_layer"]

Array = Any
Shape = Any  # a tuple of ints, or a list of them between FanOut and FanIn


class InitFn(Protocol):
  """`init_fn(key, input_shape) -> (output_shape, params)`."""

  def __call__(self, key: Array, input_shape: Shape) -> tuple[Shape, Any]:
    ...


class ApplyFn(Protocol):
  """`apply_fn(params, inputs, **kwargs) -> outputs`."""

  def __call__(self, params: Any, inputs: Array, **kwargs) -> Array:
    ...


class KernelRule(Protocol):
  """`rule(kernel, **kwargs) -> kernel`: a layer's infinite-width rule.

  Receives a `Kernel` (or a list of them, between FanOut and FanIn) and
  returns the kernel of the layer's outputs. Shapes and masks are updated by
  the core afterwards; the rule only transforms the covariances.
  """

  def __call__(self, k: Any, **kwargs) -> Any:
    ...


class MaskFn(Protocol):
  """`mask_fn(mask, input_shape) -> output_mask` of a layer."""

  def __call__(self, mask: Array, input_shape: Shape) -> Array:
    ...


class Layer(NamedTuple):
  """A layer: the finite network (`init_fn`, `apply_fn`) and its kernel.

  Unpacks like NT's triple: `init_fn, apply_fn, kernel_fn = stax.Dense(1)`.
  """

  init_fn: InitFn
  apply_fn: ApplyFn
  kernel_fn: KernelFn


def make_layer(name: str, init_fn: InitFn, apply_fn: ApplyFn,
               rule: KernelRule, requires: Requirements = Requirements(),
               mask_fn: Optional[MaskFn] = None) -> Layer:
  """Builds a `Layer` from a finite rule and a kernel rule.

  Args:
    name: the layer's name, used in error messages (`"Relu"`).
    init_fn: `init_fn(key, input_shape) -> (output_shape, params)`.
    apply_fn: `apply_fn(params, x, **kwargs) -> y`.
    rule: `rule(k: Kernel, **kwargs) -> Kernel`, the infinite-width rule.
    requires: what `rule` needs of its input kernel.
    mask_fn: how the layer transforms a mask of its inputs; None for layers
      that keep the input shape (the mask passes through unchanged).

  Returns:
    `Layer(init_fn, apply_fn, kernel_fn)`; `kernel_fn` accepts raw inputs
    (`kernel_fn(x1, x2=None, get=None, **kwargs)`) or a `Kernel`, and
    `apply_fn` takes NT's masking keywords (`mask_constant=`, or `mask=`):
    masked entries are zeroed before the layer, `mask_fn` carries the mask
    to the output, and the output is then a `ntcore.masked.MaskedArray`.
  """
  return layer_of(LeafKernelFn(name, rule, requires, init_fn, mask_fn),
                  init_fn, apply_fn)


def layer_of(kernel_fn: LeafKernelFn, init_fn: InitFn,
             apply_fn: ApplyFn) -> Layer:
  """The `Layer` of a leaf kernel function (what `make_layer` returns).

  `apply_fn` gains NT's masking keywords, and `init_fn` and `apply_fn` are
  named for the layer.
  """
  def propagate(masks, in_shapes, out_shapes):
    return masking.propagate(kernel_fn, masks, in_shapes, out_shapes)

  apply_with_masking = masked.masking_apply_fn(apply_fn, propagate)
  apply_with_masking.__name__ = kernel_fn.name
  return Layer(_named(init_fn, kernel_fn.name), apply_with_masking, kernel_fn)


def _named(init_fn: InitFn, name: str) -> InitFn:
  """`init_fn` under the layer's name (NT programs read `init_fn.__name__`),
  drawing NT 0.6.5's random bits (`ntcore._prng`)."""
  named_init_fn = _prng.with_nt_bits(init_fn)
  named_init_fn.__name__ = named_init_fn.__qualname__ = name
  return named_init_fn


NT_REQUIREMENTS = "_ntcore_requirements"
"""Attribute under which `stax.requires` stores an NT-style kernel function's
requirements (a dict of NT's keywords)."""


def as_layer(init_fn: InitFn, apply_fn: ApplyFn, kernel_fn: Any,
             mask_fn: Optional[MaskFn] = None, remask: bool = False,
             name: Optional[str] = None) -> Layer:
  """A `Layer` from any `(init_fn, apply_fn, kernel_fn)` triple.

  An ntcore triple is returned as it is. A triple written Neural Tangents'
  way, whose `kernel_fn(k: Kernel, **kwargs) -> Kernel` is a plain function
  (its requirements stated by `stax.requires`), becomes the same kind of
  layer `make_layer` builds: one code path for plugin and NT-style layers.

  Args:
    init_fn, apply_fn, kernel_fn: the layer's functions.
    mask_fn: `mask_fn(mask, input_shape) -> output_mask` (from
      `stax.supports_masking`); None keeps the mask where the shape is kept.
    remask: zero covariances of masked positions after the rule.
    name: the layer's name in messages; defaults to `kernel_fn.__name__`.
  """
  if isinstance(kernel_fn, KernelFn):
    return Layer(init_fn, apply_fn, kernel_fn)
  if not callable(kernel_fn):
    raise TypeError(f"kernel_fn must be callable, got {kernel_fn!r}.")
  reqs = dict(getattr(kernel_fn, NT_REQUIREMENTS, {}))
  requires = Requirements(
      diagonal_batch=to_diag(reqs.get("diagonal_batch")),
      diagonal_spatial=to_diag(reqs.get("diagonal_spatial")),
      batch_axis=reqs.get("batch_axis"), channel_axis=reqs.get("channel_axis"),
      remask=remask)
  name = name or getattr(kernel_fn, "__name__", None) or "layer"
  return make_layer(name, init_fn, _unwrap_masking(apply_fn), kernel_fn,
                    requires, mask_fn)


def _unwrap_masking(apply_fn):
  """The layer's own `apply_fn` under an ntcore masking wrapper, if any."""
  return getattr(apply_fn, "__wrapped__", apply_fn) if getattr(
      apply_fn, "_ntcore_masking", False) else apply_fn


def elementwise_layer(name: str, fn: Callable[[Array], Array],
                      rule: KernelRule,
                      requires: Requirements = GAUSSIAN_INPUT) -> Layer:
  """A parameter-free layer applying `fn` to every entry of its input."""

  def init_fn(key, input_shape):
    del key
    return input_shape, ()

  def apply_fn(params, x, **kwargs):
    del params, kwargs
    return fn(x)

  return make_layer(name, init_fn, apply_fn, rule, requires)

