"""`get` and kernel-like arguments of the prediction functions, as in NT.

A kernel argument is an array (used for whichever of `nngp`/`ntk` is asked
for), an `ntcore.Kernel`, or any namedtuple-like object with `nngp` and/or
`ntk` attributes (NT's `Kernel`, or `collections.namedtuple('K', 'nngp ntk')`).
A `KernelOperator` (a kernel read in panels, `operator.py`) stands where an
array may, and is passed through as it is.
"""

from __future__ import annotations

import collections
import functools
from typing import Any, Iterable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.dynamics.operator import KernelOperator
from ntcore.errors import KernelRequirementError, PredictArgumentError

Get = Union[None, str, Iterable[str]]
_ALL = ("nngp", "ntk")


def canonical_get(get: Get, allowed: tuple[str, ...]
                  ) -> tuple[tuple[str, ...], bool]:
  """`(names, single)`: `get` as a tuple, and whether it was one string.

  `None` means `("nngp", "ntk")`, as in NT.
  """
  single = isinstance(get, str)
  names = _ALL if get is None else ((get,) if single else tuple(get))
  names = tuple(str(g).lower() for g in names)
  if not names or len(set(names)) != len(names):
    raise PredictArgumentError(
        f"get={get!r}: expected one of {allowed} or a tuple of distinct ones.")
  for g in names:
    if g not in allowed:
      raise PredictArgumentError(
          f"get={get!r}: {g!r} is not available here; expected one of "
          f"{allowed} or a tuple of them.")
  return names, single


@functools.lru_cache(maxsize=None)
def _namedtuple(names: tuple[str, ...]):
  return collections.namedtuple("Gaussians", names)


def pack(out: dict, names: tuple[str, ...], single: bool) -> Any:
  """`out[name]` for a single string `get`, else a namedtuple in `get` order."""
  if single:
    return out[names[0]]
  return _namedtuple(names)(*(out[g] for g in names))


def is_array(k: Any) -> bool:
  return isinstance(k, (jax.Array, np.ndarray, np.generic))


def is_operator(k: Any) -> bool:
  return isinstance(k, KernelOperator)


def _as_kernel(k: Any) -> Any:
  """`k` as a JAX array, or as it is if a `KernelOperator`."""
  return k if is_operator(k) else jnp.asarray(k)


def kernel_attr(k: Any, g: str, name: str) -> Any:
  """The `g` (`"nngp"` or `"ntk"`) matrix of the kernel argument `name`.

  A JAX array, or a `KernelOperator` where one was given.

  Raises:
    KernelRequirementError: if `k` has no (non-None) `g`.
  """
  if is_array(k) or is_operator(k):
    return _as_kernel(k)
  value = getattr(k, g, None)
  if value is None:
    raise KernelRequirementError(
        f"{name} has no {g}, but the prediction "
        f"asked for needs it. Compute it too, e.g. kernel_fn(x1, x2, "
        f"('nngp', 'ntk')), or pass an array.")
  return _as_kernel(value)


class Pair(NamedTuple):
  """A kernel argument with its matrices as JAX arrays (None if absent)."""

  nngp: Optional[jnp.ndarray]
  ntk: Optional[jnp.ndarray]


def materialize(k: Any) -> Any:
  """`k` with NumPy matrices made JAX arrays, before any `jit` trace.

  A closed-over NumPy array converted inside a trace becomes a tracer; a
  factorization of it could then be neither checked nor cached.
  """
  if is_array(k) or is_operator(k):
    return _as_kernel(k)
  values = [getattr(k, g, None) for g in _ALL]
  return Pair(*(None if v is None else _as_kernel(v) for v in values))


def first_kernel(k: Any, name: str) -> jnp.ndarray:
  """`k` if an array, else its `nngp` or, failing that, its `ntk`."""
  if is_array(k) or is_operator(k):
    return _as_kernel(k)
  for g in _ALL:
    value = getattr(k, g, None)
    if value is not None:
      return _as_kernel(value)
  raise KernelRequirementError(
      f"{name} must be an array or have an nngp or ntk attribute; got "
      f"{type(k).__name__}.")


def has_both(k: Optional[Any]) -> bool:
  """Whether `k` carries distinct `nngp` and `ntk` (not a bare array)."""
  return (k is not None and not is_array(k) and not is_operator(k)
          and all(getattr(k, g, None) is not None for g in _ALL))
