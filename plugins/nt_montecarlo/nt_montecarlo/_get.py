"""The `get` argument of kernel functions: which kernels, in what container.

`get` is `"nngp"`, `"ntk"`, a tuple of them (a namedtuple in that order is
returned) or None (both). When `f` returns a list or tuple of outputs, the
result is a list or tuple of such containers, one per output (NT's rule for
`NTTree` outputs).
"""

from __future__ import annotations

import collections
import functools
from typing import Any, Union

from nt_montecarlo.errors import EstimatorArgumentError

KINDS = ("nngp", "ntk")

Get = Union[None, str, tuple[str, ...]]


def canonical_get(get: Get) -> tuple[tuple[str, ...], bool]:
  """Returns `(names, single)`: the kernels to compute, and whether `get`
  named one kernel as a string (then a bare array is returned)."""
  if get is None:
    return KINDS, False
  single = isinstance(get, str)
  names = (get,) if single else tuple(get)
  names = tuple(str(g).lower() for g in names)
  if not names or len(set(names)) != len(names) or any(
      g not in KINDS for g in names):
    raise EstimatorArgumentError(
        f"get={get!r} is not understood. Pass 'nngp', 'ntk', a tuple of "
        f"distinct ones such as ('nngp', 'ntk'), or None for both.")
  return names, single


@functools.lru_cache(maxsize=None)
def kernel_tuple(type_name: str, names: tuple[str, ...]):
  """One namedtuple class per `(type_name, names)`, so results compare and
  flatten alike across calls."""
  return collections.namedtuple(type_name, names)


def package(out: dict[str, Any], names: tuple[str, ...], single: bool,
            type_name: str):
  """`{"nngp": tree, ...}` -> the array, namedtuple, or list/tuple of them.

  Args:
    out: a kernel tree per name, each with the structure of `f`'s output.
    names: the names asked for, in order.
    single: return the bare kernel (`get` was a string).
    type_name: name of the namedtuple type (`"EmpiricalKernel"`).
  """
  first = out[names[0]]
  if type(first) in (list, tuple):  # pylint: disable=unidiomatic-typecheck
    return type(first)(
        package({g: out[g][i] for g in names}, names, single, type_name)
        for i in range(len(first)))
  if single:
    return first
  return kernel_tuple(type_name, names)(*(out[g] for g in names))
