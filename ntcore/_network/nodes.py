"""The nodes of a network's kernel function: leaf, fan-in, serial, parallel, repeat.

A network is a tree of `KernelFn`s. Every node answers three questions
asked before any array exists (what blocks its input needs along an axis,
which axes its first layer expects, whether its first layer reads flat
examples), and one asked while tracing: `transform(k, **kwargs)`, the
kernel of its outputs. `check_input(k, after)` checks a kernel against the
requirements of the node's first layers, `after` being the node that
produced it (None: the network's input), so messages can name it.
The user-facing call (`KernelFn.__call__`) is in `call.py`.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
from jax import lax

from ntcore._network import call, masking, shapes
from ntcore.errors import (MISSING_FAN_IN, NOT_GAUSSIAN, NOT_GAUSSIAN_FAN_IN,
                           KernelRequirementError, ShapeError)
from ntcore.kernel import Kernel
from ntcore.requirements import Need, Requirements


class KernelFn:
  """Base class of layer and network kernel functions."""

  name: str = "layer"

  # Per-process caches of compiled programs and traces (`call._jitted`,
  # `dispatch.shared_call`): rebuilt on first use, never pickled (a trace
  # holds tracebacks that cannot be, and a pickle shipped to Dask workers
  # or hashed as the model's identity must not change with the calls made).
  _CACHES = ("_jitted_forward", "_shared_calls")

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k not in self._CACHES}

  @property
  def __name__(self) -> str:  # NT sets kernel_fn.__name__ to the layer's name
    return self.name.split("(", 1)[0]

  # --- asked before tracing ----------------------------------------------
  def input_need(self, axis: str, output_need: Need) -> Need:
    """What the input must carry along `axis` ("batch" or "spatial")."""
    raise NotImplementedError

  def input_axes(self) -> tuple[Optional[int], Optional[int]]:
    """`(batch_axis, channel_axis)` the first layer expects (None: any)."""
    raise NotImplementedError

  def reads_flat_input(self) -> bool:
    """Whether the first layer reads each example as a flat vector."""
    return False

  def last_leaf(self) -> Optional["LeafKernelFn"]:
    """The layer whose output is this node's output (None: not one layer)."""
    return None

  @property
  def last_name(self) -> str:
    """How messages name this node as the one before another layer."""
    return self.name

  # --- while tracing --------------------------------------------------------
  def check_input(self, k: Any, after: Optional["KernelFn"]) -> None:
    """Checks `k` against the requirements of the layers that first see it."""

  def transform(self, k: Any, **kwargs) -> Any:
    """Applies the rule(s) to a `Kernel` (or a list of them)."""
    raise NotImplementedError

  def apply(self, k: Any, **kwargs) -> Any:
    """`transform` of the network's input kernel, requirements checked."""
    self.check_input(k, None)
    return self.transform(k, **kwargs)

  __call__ = call.kernel_fn_call


class LeafKernelFn(KernelFn):
  """The kernel function of a single layer built by `make_layer`."""

  def __init__(self, name: str, rule, requires: Requirements, init_fn,
               mask_fn):
    self.name = name
    self.rule = rule
    self.requires = requires
    self.init_fn = init_fn
    self.mask_fn = mask_fn
    self.__doc__ = getattr(rule, "__doc__", None)

  def input_need(self, axis, output_need):
    return getattr(self.requires, f"diagonal_{axis}").input_need(output_need)

  def input_axes(self):
    return self.requires.batch_axis, self.requires.channel_axis

  def reads_flat_input(self):
    return self.requires.flat_input

  def last_leaf(self):
    return self

  def check_input(self, k, after):
    if not self.requires.gaussian_input:
      return
    for ki in _kernels(k):
      if ki.is_gaussian:
        continue
      if ki.is_input:
        prev = "it receives the raw inputs, which are not Gaussian"
      else:
        prev = (f"the previous layer ({_name_of(after)}) outputs a "
                f"non-Gaussian one")
      message = NOT_GAUSSIAN.format(layer=self.name, previous=prev)
      leaf = None if after is None else after.last_leaf()
      if isinstance(leaf, FanInKernelFn) and leaf.gaussian_if_branches_are:
        message += NOT_GAUSSIAN_FAN_IN.format(fan_in=leaf.name,
                                              layer=self.name)
      raise KernelRequirementError(message)

  def transform(self, k, **kwargs):
    for ki in _kernels(k):
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


class FanInKernelFn(LeafKernelFn):
  """A layer that combines the kernels of parallel branches into one.

  `gaussian_if_branches_are`: its output is Gaussian iff every branch's is
  (FanInSum, FanInConcat), which a non-Gaussian error after it explains.
  """

  def __init__(self, *args, gaussian_if_branches_are: bool):
    super().__init__(*args)
    self.gaussian_if_branches_are = gaussian_if_branches_are


class SerialKernelFn(KernelFn):
  """Kernel function of `serial(*layers)`: the rules applied in order."""

  def __init__(self, children):
    self.children = tuple(children)
    self.name = "serial(" + ", ".join(c.name for c in self.children) + ")"

  def input_need(self, axis, output_need):
    need = output_need
    for child in reversed(self.children):
      need = child.input_need(axis, need)
    return need

  def input_axes(self):
    return _first_axes(self.children)

  def reads_flat_input(self):
    return bool(self.children) and self.children[0].reads_flat_input()

  def last_leaf(self):
    return self.children[-1].last_leaf() if self.children else None

  @property
  def last_name(self):
    return self.children[-1].last_name if self.children else "the inputs"

  def check_input(self, k, after):
    if self.children:
      self.children[0].check_input(k, after)

  def transform(self, k, **kwargs):
    for i, child in enumerate(self.children):
      if i:
        child.check_input(k, self.children[i - 1])
      k = child.transform(k, **kwargs)
    return k


class ParallelKernelFn(KernelFn):
  """Kernel function of `parallel(*layers)`: branch i acts on kernel i."""

  def __init__(self, children):
    self.children = tuple(children)
    self.name = "parallel(" + ", ".join(c.name for c in self.children) + ")"

  def input_need(self, axis, output_need):
    return Need.of_branches(c.input_need(axis, output_need)
                            for c in self.children)

  def input_axes(self):
    return _first_axes(self.children)

  def check_input(self, k, after):
    if isinstance(k, (list, tuple)) and len(k) == len(self.children):
      for c, ki in zip(self.children, k):
        c.check_input(ki, after)

  def transform(self, k, **kwargs):
    if not isinstance(k, (list, tuple)) or len(k) != len(self.children):
      n = len(k) if isinstance(k, (list, tuple)) else 1
      raise ShapeError(
          f"parallel of {len(self.children)} layers received {n} input(s). "
          f"Put FanOut({len(self.children)}) before it.")
    return [c.transform(ki, **kwargs) for c, ki in zip(self.children, k)]


class RepeatKernelFn(KernelFn):
  """Kernel function of `repeat(layer, n)`: one rule in a compiled loop."""

  def __init__(self, child: KernelFn, n: int):
    self.child, self.n = child, n
    self.name = f"repeat({child.name}, {n})"

  def input_need(self, axis, output_need):
    need = output_need
    for _ in range(max(self.n, 1)):
      need = self.child.input_need(axis, need)
    return need

  def input_axes(self):
    return self.child.input_axes()

  def last_leaf(self):
    return self.child.last_leaf()

  @property
  def last_name(self):
    return self.child.last_name

  def check_input(self, k, after):
    if self.n:
      self.child.check_input(k, after)

  def transform(self, k, **kwargs):
    if self.n == 0:  # the identity layer, as `serial()` of nothing in NT
      return ([ki.replace(is_input=False) for ki in k]
              if isinstance(k, (list, tuple)) else k.replace(is_input=False))
    # The first application runs outside the loop: it fixes the metadata
    # (is_gaussian, shapes) that every later step must preserve.
    k = self.child.transform(k, **kwargs)

    def step(carry, _):
      self.child.check_input(carry, self.child)
      out = self.child.transform(carry, **kwargs)
      if jax.tree_util.tree_structure(out) != jax.tree_util.tree_structure(carry):
        raise KernelRequirementError(
            f"repeat({self.child.name}) needs a layer whose kernel keeps its "
            f"metadata (shape, flags); use serial(*[layer] * n) instead.")
      return out, None

    k, _ = lax.scan(step, k, None, length=self.n - 1)
    return k


def _kernels(k) -> list:
  return list(k) if isinstance(k, (list, tuple)) else [k]


def _name_of(node: Optional[KernelFn]) -> str:
  """How a message names the layer before another (`after`)."""
  return "the input kernel" if node is None else node.last_name


def _first_axes(children) -> tuple[Optional[int], Optional[int]]:
  for child in children:
    b, c = child.input_axes()
    if b is not None or c is not None:
      return b, c
  return None, None


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
  shapes_out = [shapes.out_shape(layer.init_fn, s) for s in shapes_in]
  masks = [masking.propagate(layer, gather(m), s_in, s_out)
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
    k_out = k_out.mask(k_out.mask1, k_out.mask2)
  return k_out
