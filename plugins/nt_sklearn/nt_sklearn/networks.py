"""The network an estimator or kernel describes, and its `kernel_fn`.

An estimator's `network` parameter is one of

* None: `fully_connected(depth, W_std, b_std, nonlinearity)`, so that these
  are estimator parameters a grid search can tune;
* a stax triple `(init_fn, apply_fn, kernel_fn)`, used as it is;
* a factory returning a triple, called with those of `depth`, `W_std`,
  `b_std` and `nonlinearity` its signature names, plus `network_params`.

Networks built from hyper-parameters are cached (see `build`): a network's
`kernel_fn` compiles once per input shape, and scikit-learn refits the same
hyper-parameters many times (cross-validation, `clone`).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, Optional

from ntcore import stax

from nt_sklearn.errors import NETWORK_TYPE, EstimatorParamError

HYPER_PARAMETERS = ("depth", "W_std", "b_std", "nonlinearity")
"""Estimator parameters passed to a network factory that names them."""


def fully_connected(depth: int = 1, W_std: float = 1.5, b_std: float = 0.05,
                    nonlinearity: str = "Relu"):
  """`depth` x (`Dense` + nonlinearity), then a `Dense` readout.

  Args:
    depth: number of hidden layers, >= 0.
    W_std: weight standard deviation of every `Dense` layer.
    b_std: bias standard deviation of every `Dense` layer.
    nonlinearity: a stax layer name taking no arguments (`"Relu"`, `"Erf"`,
      `"Gelu"`, ...).

  Returns:
    `(init_fn, apply_fn, kernel_fn)` of width-1 layers (the kernels do not
    depend on the width).
  """
  if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
    raise EstimatorParamError(
        f"depth={depth!r} must be an integer >= 0 (the number of hidden "
        "layers).")
  if not isinstance(nonlinearity, str):
    raise EstimatorParamError(
        f"nonlinearity={nonlinearity!r} must be the name of a stax layer, "
        "e.g. 'Relu', 'Erf' or 'Gelu'; for other networks pass network=.")
  layers = []
  for _ in range(depth):
    layers += [stax.Dense(1, W_std, b_std), stax.from_registry(nonlinearity)()]
  return stax.serial(*layers, stax.Dense(1, W_std, b_std))


def build(network: Any, hyper: Mapping[str, Any],
          network_params: Optional[Mapping[str, Any]] = None) -> Callable:
  """The `kernel_fn` that `network` (see the module docstring) describes.

  Raises:
    EstimatorParamError: if `network` is none of the three forms.
  """
  if network is None:
    return _cached(fully_connected, **hyper, **(network_params or {}))
  if isinstance(network, tuple) and len(network) == 3 and callable(network[2]):
    return network[2]
  if callable(network):
    return _cached(network, **accepted(network, hyper), **(network_params
                                                            or {}))
  raise EstimatorParamError(NETWORK_TYPE.format(network=network))


def build_uncached(network: Any, hyper: Mapping[str, Any],
                   network_params: Optional[Mapping[str, Any]] = None
                   ) -> Callable:
  """`build` without the cache, for traced hyper-parameters (`jax.jacfwd`)."""
  if network is None:
    return _triple(fully_connected(**hyper, **(network_params or {})))
  return _triple(network(**accepted(network, hyper), **(network_params or {})))


def accepted(factory: Callable, hyper: Mapping[str, Any]) -> dict:
  """The entries of `hyper` that `factory`'s signature takes."""
  try:
    params = inspect.signature(factory).parameters
  except (TypeError, ValueError):
    return {}
  if any(p.kind is p.VAR_KEYWORD for p in params.values()):
    return dict(hyper)
  return {k: v for k, v in hyper.items() if k in params}


def _cached(factory: Callable, **kwargs) -> Callable:
  try:
    key = (factory, tuple(sorted(kwargs.items())))
    hash(key)
  except TypeError:  # an unhashable argument: build it every time
    return _triple(factory(**kwargs))
  return _build_cached(*key)


@functools.lru_cache(maxsize=64)
def _build_cached(factory: Callable, items: tuple) -> Callable:
  return _triple(factory(**dict(items)))


def _triple(out: Any) -> Callable:
  if not (isinstance(out, tuple) and len(out) == 3 and callable(out[2])):
    raise EstimatorParamError(
        f"the network factory returned {type(out).__name__}, not an "
        "(init_fn, apply_fn, kernel_fn) triple such as stax.serial(...) "
        "returns.")
  return out[2]
