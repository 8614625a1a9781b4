"""Kernel functions under `jit`: which `apply_fn` keywords are traced.

Keywords whose leaves are all arrays are traced; any other keyword (a
float, a string, a tuple of floats) is static, so it must be hashable, and
a new value compiles anew.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import numpy as np

from nt_montecarlo.errors import EstimatorArgumentError


def partition_kwargs(kwargs: dict) -> tuple[dict, tuple]:
  """Array-valued keywords (traced) and the rest (static, hashable).

  Raises:
    EstimatorArgumentError: a keyword that is neither.
  """
  dynamic, static = {}, []
  for k, v in kwargs.items():
    leaves = jax.tree_util.tree_leaves(v)
    if leaves and all(isinstance(l, (jax.Array, np.ndarray, np.generic))
                      for l in leaves):
      dynamic[k] = v
      continue
    try:
      hash(v)
    except TypeError:
      raise EstimatorArgumentError(
          f"apply_fn keyword {k}={v!r} is neither an array (or pytree of "
          f"arrays) nor hashable, so it cannot cross jit. Pass arrays as "
          f"arrays and other settings as hashable values (tuples, not "
          f"lists).") from None
    static.append((k, v))
  return dynamic, tuple(sorted(static, key=lambda kv: kv[0]))


def jit_kernel_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
  """`fn(x1, x2, params, **kwargs)`, compiled once per input signature.

  Eagerly, every primitive of a Jacobian would be compiled on its own;
  one `jit` is much faster and costs nothing inside an outer `jit`/`vmap`.
  """

  @functools.partial(jax.jit, static_argnames=("static_kwargs",))
  def jitted(x1, x2, params, dynamic_kwargs, static_kwargs):
    return fn(x1, x2, params, **dynamic_kwargs, **dict(static_kwargs))

  @functools.wraps(fn)
  def kernel_fn(x1, x2, params, **kwargs):
    dynamic, static = partition_kwargs(kwargs)
    return jitted(x1, x2, params, dynamic, static)

  return kernel_fn
