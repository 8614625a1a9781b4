"""`kernel_fn` on one block: the call's other arguments, split for `jit`."""

from __future__ import annotations

import types

import jax
import numpy as np


def is_array(x) -> bool:
  """An array leaf (concrete or traced), as opposed to a static setting."""
  return isinstance(x, (jax.Array, np.ndarray, np.generic))


class BlockCall:
  """`kernel_fn` on one block, with the call's other arguments.

  Array leaves of `args`/`kwargs` are passed in as `dynamic` (traced, and
  replicated on devices); the others are kept here and closed over. Holds
  no data set, so a cached device runner does not keep one alive.
  """

  def __init__(self, kernel_fn, args, kwargs):
    self.kernel_fn = kernel_fn
    flat, self.treedef = jax.tree_util.tree_flatten((args, kwargs))
    self.dynamic_index = [k for k, v in enumerate(flat) if is_array(v)]
    self.dynamic = [flat[k] for k in self.dynamic_index]
    for k in self.dynamic_index:
      flat[k] = None
    self.flat = flat
    self.static = tuple((k, v) for k, v in enumerate(flat)
                        if k not in set(self.dynamic_index))
    self.as_generator = False

  def arguments(self, dynamic=None):
    """`(args, kwargs)` with the array leaves filled in."""
    flat = list(self.flat)
    for k, v in zip(self.dynamic_index,
                    self.dynamic if dynamic is None else dynamic):
      flat[k] = v
    return jax.tree_util.tree_unflatten(self.treedef, flat)

  def __call__(self, inputs, dynamic):
    x1, x2, extra = inputs
    args, kwargs = self.arguments(dynamic)
    out = self.kernel_fn(x1, x2, *args, **kwargs, **extra)
    if isinstance(out, types.GeneratorType):
      # A Monte Carlo generator of estimates: all of them, per block.
      self.as_generator = True
      out = tuple(out)
    return out
