"""Combinators: networks out of layers (`serial`, `parallel`, fan-out/in, `repeat`).

These are structure, not layer families, so they live in the core. Each
factory returns a `Layer` whose `kernel_fn` is a node of the engine
(`ntcore/_network/nodes.py`) composing the children's kernel rules.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax, random

from ntcore import _prng, masked
from ntcore._network.nodes import (FanInKernelFn, KernelFn, ParallelKernelFn,
                                   RepeatKernelFn, SerialKernelFn)
from ntcore.errors import KernelRequirementError, ShapeError
from ntcore.layer import Layer, as_layer, layer_of, make_layer
from ntcore.requirements import Requirements


def serial(*layers) -> Layer:
  """Composes layers in sequence (like `jax.example_libraries.stax.serial`).

  Args:
    *layers: `Layer`s or `(init_fn, apply_fn, kernel_fn)` triples.

  Returns:
    A `Layer`; its params are a list with one entry per layer. `apply_fn`
    splits a keyword `rng` between the layers.
  """
  layers = [as_layer(*l) for l in layers]
  init_fns = [l.init_fn for l in layers]
  apply_fns = [l.apply_fn for l in layers]

  def init_fn(key, input_shape):
    params = []
    for f in init_fns:
      key, layer_key = random.split(key)
      input_shape, p = f(layer_key, input_shape)
      params.append(p)
    return input_shape, params

  def apply_fn(params, inputs, **kwargs):
    rng = kwargs.pop("rng", None)
    rngs = (random.split(rng, len(layers)) if rng is not None
            else [None] * len(layers))
    # An explicit `mask=` describes the network's inputs: the first layer
    # takes it, and every later one reads the mask its predecessor returns.
    # `mask_constant` goes to every layer, as in NT.
    mask = kwargs.pop("mask", None)
    for i, (f, p, r) in enumerate(zip(apply_fns, params, rngs)):
      extra = {} if i or mask is None else {"mask": mask}
      inputs = f(p, inputs, rng=r, **extra, **kwargs)
    return inputs

  return _named_layer("serial", init_fn, apply_fn,
                      SerialKernelFn([_as_kernel_fn(l) for l in layers]))


def parallel(*layers) -> Layer:
  """Applies layer i to input i of a list (after `FanOut`).

  Returns:
    A `Layer` mapping lists of inputs/shapes/kernels to lists.
  """
  layers = [as_layer(*l) for l in layers]

  def init_fn(key, input_shape):
    keys = random.split(key, len(layers))
    out = [l.init_fn(k, s) for l, k, s in zip(layers, keys, input_shape)]
    return [o[0] for o in out], tuple(o[1] for o in out)

  def apply_fn(params, inputs, **kwargs):
    rng = kwargs.pop("rng", None)
    rngs = (random.split(rng, len(layers)) if rng is not None
            else [None] * len(layers))
    inputs = masked.branches(inputs)
    mask = kwargs.pop("mask", None)
    masks = (mask if isinstance(mask, (list, tuple))
             else [mask] * len(layers))
    return [l.apply_fn(p, x, rng=r, **({} if m is None else {"mask": m}),
                       **kwargs)
            for l, p, x, r, m in zip(layers, params, inputs, rngs, masks)]

  return _named_layer("parallel", init_fn, apply_fn,
                      ParallelKernelFn([_as_kernel_fn(l) for l in layers]))


def _named_layer(name, init_fn, apply_fn, kernel_fn) -> Layer:
  init_fn = _prng.with_nt_bits(init_fn)  # NT 0.6.5's parameters
  init_fn.__name__ = apply_fn.__name__ = name  # as NT names them
  return Layer(init_fn, apply_fn, kernel_fn)


def _as_kernel_fn(layer: Layer) -> KernelFn:
  if not isinstance(layer.kernel_fn, KernelFn):
    raise TypeError(
        f"{layer.kernel_fn!r} is not an ntcore kernel function. Build layers "
        f"with ntcore.stax or ntcore.make_layer.")
  return layer.kernel_fn


def FanOut(num: int) -> Layer:  # pylint: disable=invalid-name
  """Copies the input `num` times (a list), for `parallel` branches."""

  def init_fn(key, input_shape):
    del key
    return [input_shape] * num, ()

  def apply_fn(params, inputs, **kwargs):
    del params, kwargs
    return [inputs] * num

  def rule(k, **kwargs):
    del kwargs
    return [k] * num

  def mask_fn(mask, input_shape):
    del input_shape
    return [mask] * num

  return make_layer("FanOut", init_fn, apply_fn, rule, mask_fn=mask_fn)


def _fan_in(name, combine_shapes, apply, rule, mask_fn=None,
            gaussian_if_branches_are=True):
  def init_fn(key, input_shape):
    del key
    return combine_shapes(input_shape), ()

  def apply_fn(params, inputs, **kwargs):
    del params, kwargs
    return apply(inputs)

  kernel_fn = FanInKernelFn(
      name, rule, Requirements(), init_fn, mask_fn,
      gaussian_if_branches_are=gaussian_if_branches_are)
  return layer_of(kernel_fn, init_fn, apply_fn)


def _mask_all(masks, input_shape):
  """A position is padding after a sum or product iff it is in every input."""
  del input_shape
  masks = [m for m in masks if m is not None]
  out = masks[0]
  for m in masks[1:]:
    out = out & m
  return out


def _same_shapes(name):
  def combine(shapes):
    if any(tuple(s) != tuple(shapes[0]) for s in shapes):
      raise ShapeError(f"{name} needs inputs of one shape, got "
                       f"{[tuple(s) for s in shapes]}.")
    return shapes[0]
  return combine


def _same_order(ks):
  """Branch kernels in one spatial order: the majority's, natural on a tie (NT)."""
  rev = sum(k.is_reversed for k in ks) > len(ks) / 2
  return [k if k.is_reversed == rev else k.reverse()
          for k in ks]


def _sum(ms):
  if any(m is None for m in ms):
    return None
  out = ms[0]
  for m in ms[1:]:
    out = out + m
  return out


def FanInSum() -> Layer:  # pylint: disable=invalid-name
  """Sums a list of inputs.

  Kernel: branches after independent affine layers are independent
  zero-mean Gaussian processes, so covariances add,
  `nngp = sum_i nngp_i` (likewise `ntk`, `cov1`, `cov2`); the sum is Gaussian
  iff every branch is. (Two branches that share randomness, e.g. two
  Identity branches, are correlated and not covered by this rule.)
  """

  def rule(ks, **kwargs):
    del kwargs
    ks = _same_order(ks)
    return ks[0].replace(nngp=_sum([k.nngp for k in ks]),
                         ntk=_sum([k.ntk for k in ks]),
                         cov1=_sum([k.cov1 for k in ks]),
                         cov2=_sum([k.cov2 for k in ks]),
                         is_gaussian=all(k.is_gaussian for k in ks))

  return _fan_in("FanInSum", _same_shapes("FanInSum"), _sum, rule, _mask_all)


def FanInProd() -> Layer:  # pylint: disable=invalid-name
  """Multiplies a list of inputs elementwise.

  Kernel: for independent zero-mean branches, E[prod_i f_i(x) f_i(x')] =
  prod_i nngp_i, and by the product rule
  `ntk = sum_i ntk_i * prod_{j != i} nngp_j`. The product is not Gaussian.
  """

  def prod(ms):
    out = ms[0]
    for m in ms[1:]:
      out = out * m
    return out

  def rule(ks, **kwargs):
    del kwargs
    ks = _same_order(ks)
    ntk = None
    if all(k.ntk is not None for k in ks):
      ntk = _sum([ks[i].ntk * prod([k.nngp for j, k in enumerate(ks) if j != i])
                  for i in range(len(ks))])
    cov2 = None if ks[0].cov2 is None else prod([k.cov2 for k in ks])
    return ks[0].replace(nngp=prod([k.nngp for k in ks]), ntk=ntk,
                         cov1=prod([k.cov1 for k in ks]), cov2=cov2,
                         is_gaussian=False)

  return _fan_in("FanInProd", _same_shapes("FanInProd"), prod, rule,
                 _mask_all, gaussian_if_branches_are=False)


def FanInConcat(axis: int = -1) -> Layer:  # pylint: disable=invalid-name
  """Concatenates a list of inputs along `axis` (the channel axis).

  Kernel: a channel-axis concatenation of widths `c_i` has the
  channel-averaged covariance `nngp = sum_i c_i nngp_i / sum_i c_i`.
  Concatenation along a non-channel axis is not supported yet.
  """

  def combine(shapes):
    ax = axis % len(shapes[0])
    rest = [tuple(s[:ax]) + tuple(s[ax + 1:]) for s in shapes]
    if any(r != rest[0] for r in rest):
      raise ShapeError(f"FanInConcat(axis={axis}) needs inputs equal off the "
                       f"concatenation axis, got {[tuple(s) for s in shapes]}.")
    return shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:]

  def rule(ks, **kwargs):
    del kwargs
    ks = _same_order(ks)
    ax = axis % len(ks[0].shape1)
    if ax != ks[0].channel_axis:
      raise KernelRequirementError(
          f"FanInConcat(axis={axis}) concatenates along a non-channel axis; "
          f"its kernel is only implemented for the channel axis "
          f"({ks[0].channel_axis}).")
    widths = [k.shape1[ax] for k in ks]
    total = sum(widths)

    def avg(ms):
      return None if any(m is None for m in ms) else _sum(
          [w / total * m for w, m in zip(widths, ms)])

    return ks[0].replace(nngp=avg([k.nngp for k in ks]),
                         ntk=avg([k.ntk for k in ks]),
                         cov1=avg([k.cov1 for k in ks]),
                         cov2=avg([k.cov2 for k in ks]),
                         is_gaussian=all(k.is_gaussian for k in ks))

  def mask_fn(masks, input_shape):
    full = [jnp.zeros(s, bool) if m is None else jnp.broadcast_to(m, s)
            for m, s in zip(masks, input_shape)]
    return jnp.concatenate(full, axis)

  return _fan_in("FanInConcat", combine,
                 lambda xs: jnp.concatenate(xs, axis), rule, mask_fn)


def Identity() -> Layer:  # pylint: disable=invalid-name
  """The identity: outputs and kernel are the inputs'."""

  def init_fn(key, input_shape):
    del key
    return input_shape, ()

  def apply_fn(params, inputs, **kwargs):
    del params, kwargs
    return inputs

  def rule(k, **kwargs):
    del kwargs
    return k

  return make_layer("Identity", init_fn, apply_fn, rule)


def repeat(layer, n: int) -> Layer:
  """`serial(*[layer] * n)` compiled as a loop (fast to compile for large n).

  The layer must keep its input's shape. Params are stacked along a leading
  axis of size `n` (one set per repetition).
  """
  layer = as_layer(*layer)
  if n < 0:
    raise ValueError(f"repeat needs n >= 0, got {n}.")

  def init_fn(key, input_shape):
    out_shape, _ = layer.init_fn(key, input_shape)
    if tuple(out_shape) != tuple(input_shape):
      raise ShapeError(f"repeat needs a layer that keeps its input shape; "
                       f"{tuple(input_shape)} -> {tuple(out_shape)}.")

    def body(key, _):
      key, layer_key = random.split(key)
      return key, layer.init_fn(layer_key, input_shape)[1]

    _, params = lax.scan(body, key, None, length=n)
    return out_shape, params

  def apply_fn(params, inputs, **kwargs):
    rng = kwargs.pop("rng", None)
    rngs = random.split(rng, n) if rng is not None else None

    def body(x, pr):
      p, r = pr
      return layer.apply_fn(p, x, rng=r, **kwargs), None

    if rngs is None:
      def body_no_rng(x, p):
        return layer.apply_fn(p, x, **kwargs), None
      return lax.scan(body_no_rng, inputs, params, length=n)[0]
    return lax.scan(body, inputs, (params, rngs), length=n)[0]

  return _named_layer("repeat", init_fn, apply_fn,
                      RepeatKernelFn(_as_kernel_fn(layer), n))
