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
import functools
from typing import Any, Optional, Sequence

import jax
import numpy as np

from ntcore import _inputs, _masking
from ntcore.errors import (KernelRequirementError, NOT_GAUSSIAN,
                           NOT_GAUSSIAN_FAN_IN)
from ntcore.kernel import Kernel
from ntcore.layer import FULL_UNLESS_ZERO, Diag, Requirements

_AXES = ("batch", "spatial")
_KERNEL_FIELDS = ("nngp", "ntk", "cov1", "cov2")


class KernelFn:
  """Base class of layer and network kernel functions."""

  name: str = "layer"

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

  @property
  def last_name(self) -> str:
    """Name of the last layer, for messages about what comes after it."""
    return self.name

  # --- NT's user-facing call --------------------------------------------
  def __call__(self, x1_or_kernel, x2=None, get=None, **kwargs):
    """Computes the kernel of the network's outputs.

    Args:
      x1_or_kernel: inputs `x1` of shape `(n1, ...)`, or a `Kernel` (or a
        list of them) to transform.
      x2: inputs `(n2, ...)`, or None for the kernel of `x1` with itself.
      get: None (return the `Kernel`), a name (`"nngp"`, `"ntk"`, `"cov1"`,
        ...) or a tuple of names (a namedtuple in that order). The NTK is
        computed only when asked for.
      **kwargs: `diagonal_batch`, `diagonal_spatial` (which blocks of the
        output to keep), `mask_constant` (input entries equal to it are
        masked), and any keyword a layer's rule consumes.

    Returns:
      What `get` names: arrays `(n1, n2, <spatial>)`, a namedtuple of them,
      or a `Kernel`.
    """
    if _is_kernel(x1_or_kernel):
      out = self.transform(x1_or_kernel, previous="the input kernel", **kwargs)
      return out if get is None else _select(out, _canonical_get(get)[0])
    get, names, single = _canonical_get(get)
    batch_axis, channel_axis = self.input_axes()
    batch_axis = 0 if batch_axis is None else batch_axis
    channel_axis = -1 if channel_axis is None else channel_axis
    x1 = _inputs.canonical_input(x1_or_kernel, "x1")
    x2 = None if x2 is None else _inputs.canonical_input(x2, "x2")
    _inputs.check_pair(x1, x2, batch_axis)
    diagonal_batch = self._diagonal("batch", kwargs.pop("diagonal_batch", None))
    diagonal_spatial = self._diagonal("spatial",
                                      kwargs.pop("diagonal_spatial", None))
    static = dict(names=names, diagonal_batch=diagonal_batch,
                  diagonal_spatial=diagonal_spatial, batch_axis=batch_axis,
                  channel_axis=channel_axis,
                  mask_constant=kwargs.pop("mask_constant", None),
                  x2_is_none=x2 is None)
    dynamic, static_kwargs = _split_kwargs(kwargs)
    try:
      hash(static_kwargs)
      run = functools.partial(self._jitted, static_kwargs=static_kwargs,
                              **static)
    except TypeError:  # an unhashable static keyword: run without jit
      run = functools.partial(self._forward, static_kwargs=static_kwargs,
                              **static)
    out = run(x1, x2, dynamic)
    if get is None:
      return out
    if single:
      return out[0]
    return _get_tuple(tuple(names))(*out)

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
        "channel_axis", "mask_constant", "x2_is_none", "static_kwargs"))

  def _forward(self, x1, x2, dynamic, *, names, diagonal_batch,
               diagonal_spatial, batch_axis, channel_axis, mask_constant,
               x2_is_none, static_kwargs):
    del x2_is_none  # part of the jit cache key only
    k = _inputs.inputs_to_kernel(
        x1, x2, diagonal_batch=diagonal_batch,
        diagonal_spatial=diagonal_spatial,
        compute_ntk=names is None or "ntk" in names, batch_axis=batch_axis,
        channel_axis=channel_axis, mask_constant=mask_constant)
    k = self.transform(k, **dict(static_kwargs), **dynamic)
    if isinstance(k, (list, tuple)):
      k = [_finalize(ki) for ki in k]
      return k if names is None else [_select(ki, names) for ki in k]
    k = _finalize(k)
    return k if names is None else _select(k, names)


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
    out = self.rule(k, **kwargs)
    return _propagate(self, k, out)

  def __repr__(self):
    return f"<kernel_fn of {self.name}>"


@functools.lru_cache(maxsize=None)
def _get_tuple(names: tuple[str, ...]):
  """One namedtuple class per `get`, so results of two calls are the same
  pytree type (`jax.tree_util.tree_map` over both works)."""
  return collections.namedtuple("Kernel", names)


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

  jax.eval_shape(f, jax.random.PRNGKey(0))
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


def _finalize(k: Kernel) -> Kernel:
  """The output kernel. A network without parameters keeps its NTK a 0-d zero,
  as NT returns it (`Flatten()` alone: `ntk.shape == ()`)."""
  return k


def _is_kernel(x) -> bool:
  if isinstance(x, (list, tuple)):
    return len(x) > 0 and all(isinstance(xi, Kernel) for xi in x)
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
  valid = set(_KERNEL_FIELDS) | {"mask1", "mask2"}
  for n in names:
    if n not in valid:
      raise ValueError(f"get={get!r}: {n!r} is not a kernel field; use "
                       f"'nngp', 'ntk', 'cov1' or 'cov2' (or a tuple of them).")
  return get, names, single


def _select(k: Kernel, names: Sequence[str]):
  if isinstance(names, str):
    return getattr(k, names)
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
