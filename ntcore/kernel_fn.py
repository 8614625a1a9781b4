"""`KernelFn`: the `kernel_fn` of a layer or a network.

A `KernelFn` is both

* a rule on kernels, `kernel_fn(k: Kernel) -> Kernel`, composable by the
  combinators, and
* NT's user-facing `kernel_fn(x1, x2=None, get=None, **kwargs)`: it decides
  which covariance blocks the whole network needs (NT paper section 3.1),
  builds the input kernel, runs every rule under one `jax.jit`, and returns
  what `get` asks for.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Optional, Sequence

import jax
import numpy as np

from ntcore import _finite, _inputs, _masking
from ntcore.errors import (MISSING_FAN_IN, NOT_GAUSSIAN, NOT_GAUSSIAN_FAN_IN,
                           KernelRequirementError, ShapeError)
from ntcore.kernel import Kernel
from ntcore.layer import FULL_UNLESS_ZERO, Diag, Requirements

_GET_FIELDS = tuple(f.name for f in dataclasses.fields(Kernel))
_ARRAY_FIELDS = frozenset({"nngp", "ntk", "cov1", "cov2", "mask1", "mask2"})


class KernelFn:
  """Base class of layer and network kernel functions."""

  name: str = "layer"

  @property
  def __name__(self) -> str:  # NT sets kernel_fn.__name__ to the layer's name
    return self.name.split("(", 1)[0]

  # --- what combinators ask of a kernel function -------------------------
  def needs_full(self, axis: str, full_output_needed: bool) -> bool:
    """Whether the input must carry off-diagonal blocks along `axis`."""
    raise NotImplementedError

  def input_axes(self) -> tuple[Optional[int], Optional[int]]:
    """`(batch_axis, channel_axis)` the first layer expects (None: any)."""
    raise NotImplementedError

  def transform(self, k: Any, previous: str = "the inputs", **kwargs) -> Any:
    """Applies the rule(s) to a `Kernel` (or a list of them)."""
    raise NotImplementedError

  def first_layer_name(self) -> Optional[str]:
    """Name of the layer that first sees the inputs, if there is one."""
    return None

  @property
  def last_name(self) -> str:
    """Name of the last layer, for messages about what comes after it."""
    return self.name

  # --- NT's user-facing call --------------------------------------------
  def __call__(self, x1_or_kernel, x2=None, get=None, **kwargs):
    """Computes the kernel of the network's outputs.

    Args:
      x1_or_kernel: inputs `x1` of shape `(n1, ...)`, a list of them for a
        network that starts with `parallel`, or a `Kernel` (or a list of
        them) to transform.
      x2: inputs `(n2, ...)` (a list for a `parallel` network), or None for
        the kernel of `x1` with itself. An `x2` that is `x1`, or equal to it
        within 1e-12, is treated as None (also under `jit`, where the check
        runs on device), so same-example entries are computed exactly and
        `kernel_fn(x, x)`, `kernel_fn(x, x.copy())` and `kernel_fn(x)` agree;
        `cov2` is then `cov1`.
      get: None (return the `Kernel`), a field name (`"nngp"`, `"ntk"`,
        `"cov1"`, `"is_gaussian"`, `"shape1"`, ...) or a tuple of names (an
        `AnalyticKernel` namedtuple in that order). The NTK is computed only
        when asked for. A network ending in `parallel` returns a list with
        one such result per branch.
      **kwargs: `diagonal_batch`, `diagonal_spatial` (which blocks of the
        output to keep), `mask_constant` (input entries equal to it are
        masked), and any keyword a layer's rule consumes.

    Returns:
      What `get` names: arrays `(n1, n2, <spatial>)`, a namedtuple of them,
      or a `Kernel` (a list of these for a network ending in `parallel`).
    """
    if _is_kernel(x1_or_kernel):
      self._check_blocks(x1_or_kernel)
      out = self.transform(x1_or_kernel, previous="the input kernel", **kwargs)
      return _output(out, _canonical_get(get))
    get_form = _canonical_get(get)
    batch_axis, channel_axis = self.input_axes()
    batch_axis = 0 if batch_axis is None else batch_axis
    channel_axis = -1 if channel_axis is None else channel_axis
    if isinstance(x2, (list, tuple)) and all(x is None for x in x2):
      x2 = None  # NT's `(None, None)` for a two-input network
    x1 = _inputs.canonical_inputs(x1_or_kernel, "x1")
    same = _inputs.same_inputs(x1_or_kernel, x2)
    x2 = None if x2 is None else _inputs.canonical_inputs(x2, "x2")
    if self.first_layer_name() == "Flatten":
      # Flatten's kernel is that of the flattened examples, so (as NT's
      # batch allows) x1 (n, 784) and x2 (m, 28, 28, 1) may meet.
      x1, x2 = _inputs.flatten_if_shapes_differ(x1, x2, batch_axis)
    _inputs.check_pairs(x1, x2, batch_axis)
    diagonal_batch = self._diagonal("batch", kwargs.pop("diagonal_batch", None))
    diagonal_spatial = self._diagonal("spatial",
                                      kwargs.pop("diagonal_spatial", None))
    names = get_form[1]
    inside = names if names is not None and set(names) <= _ARRAY_FIELDS else None
    static = dict(diagonal_batch=diagonal_batch,
                  diagonal_spatial=diagonal_spatial, batch_axis=batch_axis,
                  channel_axis=channel_axis,
                  mask_constant=kwargs.pop("mask_constant", None),
                  compute_ntk=names is None or "ntk" in names)
    dynamic, static_kwargs = _split_kwargs(kwargs)
    try:
      hash(static_kwargs)
      forward = self._jitted
    except TypeError:  # an unhashable static keyword: run without jit
      forward = self._forward

    def run(a, b, names_in):
      return forward(a, b, dynamic, names=names_in, x2_is_none=b is None,
                     static_kwargs=static_kwargs, **static)

    if x2 is None or same is True:
      out = run(x1, None, _same_names(inside))
      if x2 is not None:
        out = _as_given_twice(out, inside, keep_flag=True)
    elif same is None:  # traced inputs of equal shapes: decide on device
      def given_twice(a, b):
        # The value of `x` with itself; the derivatives of the pair (x1, x2),
        # which must see a perturbation of x2 that x1 does not get.
        pair = run(a, b, inside)
        exact = _as_given_twice(run(a, None, _same_names(inside)), inside,
                                keep_flag=False)
        return jax.tree_util.tree_map(
            lambda p, e: p + jax.lax.stop_gradient(e - p), pair, exact)

      out = jax.lax.cond(_inputs.traced_same(x1, x2), given_twice,
                         lambda a, b: run(a, b, inside), x1, x2)
    else:
      out = run(x1, x2, inside)
    out = (_shape_output(out, get_form) if inside is not None
           else _output(out, get_form))
    if not isinstance(out, list):
      _finite.warn_if_not_finite(out, x1_or_kernel, x2)
    return out

  def _check_blocks(self, k) -> None:
    """A given input kernel must carry the blocks this network reads."""
    kernels = []
    _map_kernels(kernels.append, k)
    for ki in kernels:
      for axis, full_out in (("batch", False), ("spatial", FULL_UNLESS_ZERO)):
        if (getattr(ki, f"diagonal_{axis}")
            and self.needs_full(axis, full_out) is True):
          raise KernelRequirementError(
              f"{self.name} reads off-diagonal {axis} covariances, but the "
              f"input kernel has diagonal_{axis}=True and does not hold "
              f"them. Recompute the input kernel with "
              f"diagonal_{axis}=False.")

  def _diagonal(self, axis: str, asked: Optional[bool]) -> bool:
    """Which blocks the input kernel carries along `axis` (True: diagonal)."""
    # By default the output keeps full spatial covariances and per-example
    # variances only (cov1 diagonal in the batch), as in NT.
    default = axis == "batch"
    full_out = not (default if asked is None else asked)
    if asked is None and axis == "spatial":
      # As in NT: the output is diagonal by default only where a layer
      # (ConvLocal) makes its off-diagonal blocks zero.
      full_out = FULL_UNLESS_ZERO
    full_in = self.needs_full(axis, full_out)
    if asked and full_in:
      raise KernelRequirementError(
          f"diagonal_{axis}=True was asked for, but a layer of this network "
          f"needs the off-diagonal {axis} covariances. Leave diagonal_{axis} "
          f"unset to let ntcore choose.")
    return not full_in

  @functools.cached_property
  def _jitted(self):
    return jax.jit(self._forward, static_argnames=(
        "names", "diagonal_batch", "diagonal_spatial", "batch_axis",
        "channel_axis", "mask_constant", "x2_is_none", "static_kwargs",
        "compute_ntk"))

  def _forward(self, x1, x2, dynamic, *, names, diagonal_batch,
               diagonal_spatial, batch_axis, channel_axis, mask_constant,
               x2_is_none, static_kwargs, compute_ntk):
    del x2_is_none  # part of the jit cache key only
    k = _inputs.inputs_to_kernels(
        x1, x2, diagonal_batch=diagonal_batch,
        diagonal_spatial=diagonal_spatial, compute_ntk=compute_ntk,
        batch_axis=batch_axis, channel_axis=channel_axis,
        mask_constant=mask_constant)
    k = self.transform(k, **dict(static_kwargs), **dynamic)
    return k if names is None else _map_kernels(lambda ki: _select(ki, names),
                                                k)


class LeafKernelFn(KernelFn):
  """The kernel function of a single layer built by `make_layer`."""

  def __init__(self, name, rule, requires: Requirements, init_fn, mask_fn):
    self.name = name
    self.rule = rule
    self.requires = requires
    self.init_fn = init_fn
    self.mask_fn = mask_fn
    self.__doc__ = getattr(rule, "__doc__", None)

  def needs_full(self, axis, full_output_needed):
    diag: Diag = getattr(self.requires, f"diagonal_{axis}")
    return diag.needs_full_input(full_output_needed)

  def input_axes(self):
    return self.requires.batch_axis, self.requires.channel_axis

  def first_layer_name(self):
    return self.name

  def transform(self, k, previous="the inputs", **kwargs):
    if self.requires.gaussian_input:
      for ki in (k if isinstance(k, (list, tuple)) else [k]):
        if not ki.is_gaussian:
          prev = ("it receives the raw inputs, which are not Gaussian"
                  if ki.is_input else f"the previous layer ({previous}) "
                  f"outputs a non-Gaussian one")
          message = NOT_GAUSSIAN.format(layer=self.name, previous=prev)
          if previous in ("FanInSum", "FanInConcat"):
            message += NOT_GAUSSIAN_FAN_IN.format(fan_in=previous,
                                                  layer=self.name)
          raise KernelRequirementError(message)
    for ki in (k if isinstance(k, (list, tuple)) else [k]):
      _check_axes(self, ki)
    try:
      out = self.rule(k, **kwargs)
    except AttributeError as e:
      if isinstance(k, (list, tuple)):
        raise ShapeError(MISSING_FAN_IN.format(layer=self.name,
                                               n=len(k))) from e
      raise
    return _propagate(self, k, out)

  def __repr__(self):
    return f"<kernel_fn of {self.name}>"


@functools.lru_cache(maxsize=None)
def _get_tuple(names: tuple[str, ...]):
  """One namedtuple class per `get`, named as NT names it, so results of two
  calls are the same pytree type (`jax.tree_util.tree_map` over both works)."""
  return collections.namedtuple("AnalyticKernel", names)


def _same_names(names):
  """The fields to compute when `x2` is `x1`: `cov2` is then `cov1`."""
  if names is None:
    return None
  return tuple("cov1" if n == "cov2" else "mask1" if n == "mask2" else n
               for n in names)


def _as_given_twice(out, names, keep_flag: bool):
  """The `x2=None` result as the result for `x2` equal to `x1`.

  `cov2 = cov1` and `mask2 = mask1`. `keep_flag`: keep `x1_is_x2=True`
  (decided before tracing); otherwise the flag is cleared so both branches
  of an on-device decision have one structure.
  """
  if isinstance(out, list):
    return [_as_given_twice(o, names, keep_flag) for o in out]
  if names is None:
    return out.replace(cov2=out.cov1, mask2=out.mask1,
                       x1_is_x2=out.x1_is_x2 if keep_flag else False)
  return out


def _shape_output(out, get_form):
  """Arrays selected inside jit, in the form `get` asks for."""
  _, names, single = get_form
  if isinstance(out, list):
    return [_shape_output(o, get_form) for o in out]
  if single:
    return out[0]
  return _get_tuple(tuple(names))(*out)


def _output(out, get_form):
  """`get`'s fields of a Kernel (or list of Kernels), selected outside jit."""
  _, names, single = get_form
  if names is None:
    return out
  if isinstance(out, (list, tuple)):
    return [_output(o, get_form) for o in out]
  values = _select(out, names)
  return values[0] if single else _get_tuple(tuple(names))(*values)


def _check_axes(layer: LeafKernelFn, k: Kernel) -> None:
  """A layer must agree with its input on the batch and channel axes."""
  ndim = len(k.shape1)
  for axis in ("batch_axis", "channel_axis"):
    want = getattr(layer.requires, axis)
    if want is not None and want % ndim != getattr(k, axis):
      raise KernelRequirementError(
          f"{layer.name} expects {axis}={want}, but its input has "
          f"{axis}={getattr(k, axis)} (activations of shape {k.shape1}). Use "
          f"one {axis} throughout the network.")


def _propagate(layer: LeafKernelFn, k_in, k_out):
  """Sets output shapes (from `init_fn`) and masks on the rule's output."""
  many = isinstance(k_in, (list, tuple))

  def gather(field):
    return [getattr(k, field) for k in k_in] if many else getattr(k_in, field)

  shapes_in = gather("shape1"), gather("shape2")
  shapes_out = [out_shape(layer.init_fn, s) for s in shapes_in]
  masks = [_masking.propagate(layer, gather(m), s_in, s_out)
           for m, s_in, s_out in zip(("mask1", "mask2"), shapes_in, shapes_out)]
  if isinstance(k_out, (list, tuple)):
    n = len(k_out)
    m1, m2 = [[None] * n if m is None else m for m in masks]
    return [ko.replace(shape1=tuple(a), shape2=tuple(b), is_input=False,
                       mask1=c, mask2=d)
            for ko, a, b, c, d in zip(k_out, *shapes_out, m1, m2)]
  k_out = k_out.replace(shape1=tuple(shapes_out[0]),
                        shape2=tuple(shapes_out[1]), is_input=False,
                        mask1=masks[0], mask2=masks[1])
  if layer.requires.remask:
    k_out = _masking.remask(k_out)
  return k_out


@functools.lru_cache(maxsize=4096)
def _out_shape_cached(init_fn, in_shape):
  box = []

  def f(key):
    shape, params = init_fn(key, _unfreeze(in_shape))
    box.append(shape)
    return params

  try:
    jax.eval_shape(f, jax.random.PRNGKey(0))
  except NotImplementedError:
    # A layer with no finite network (NT's kernel-only layers) keeps the
    # shape of its input.
    return _freeze(_unfreeze(in_shape))
  return _freeze(box[0])


def out_shape(init_fn, in_shape):
  """Output shape of a layer for `in_shape`, found by tracing `init_fn`."""
  return _unfreeze(_out_shape_cached(init_fn, _freeze(in_shape)))


def _freeze(shape):
  if isinstance(shape, list):
    return ("__list__",) + tuple(_freeze(s) for s in shape)
  return tuple(int(s) for s in shape)


def _unfreeze(shape):
  if shape and shape[0] == "__list__":
    return [_unfreeze(s) for s in shape[1:]]
  return tuple(shape)


def _map_kernels(fn, k):
  """`fn` of every `Kernel` in a (nested) list of them."""
  if isinstance(k, (list, tuple)):
    return [_map_kernels(fn, ki) for ki in k]
  return fn(k)


def _is_kernel(x) -> bool:
  if isinstance(x, (list, tuple)):
    return len(x) > 0 and all(_is_kernel(xi) for xi in x)
  return isinstance(x, Kernel)


def _canonical_get(get):
  """Returns `(get, names, single)`; `names` is None for the whole Kernel."""
  if get is None:
    return None, None, False
  if isinstance(get, str):
    names = (get,)
    single = True
  else:
    names = tuple(get)
    single = False
  for n in names:
    if n not in _GET_FIELDS:
      raise ValueError(f"get={get!r}: {n!r} is not a kernel field; use one "
                       f"of {', '.join(_GET_FIELDS)} (or a tuple of them).")
  return get, names, single


def _select(k: Kernel, names: Sequence[str]):
  return tuple(getattr(k, n) for n in names)


def _is_array(x) -> bool:
  return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _split_kwargs(kwargs):
  """Splits keywords into array leaves (traced) and the rest (static)."""
  dynamic, static = {}, []
  for key, value in kwargs.items():
    leaves = jax.tree_util.tree_leaves(value)
    if leaves and all(_is_array(v) for v in leaves):
      dynamic[key] = value
    else:
      static.append((key, value))
  return dynamic, tuple(sorted(static, key=lambda kv: kv[0]))
