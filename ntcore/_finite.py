"""Warn when finite inputs give a kernel with NaN or infinite entries.

Such a kernel means the arithmetic overflowed (inputs of norm 1e200 in
float64, 1e25 in float32: squared norms exceed the largest float), which
no later step can repair. Only concrete values are checked; under `jit`
the values are unknown and nothing is said.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.errors import NON_FINITE_KERNEL, NonFiniteKernelWarning

_FIELDS = ("nngp", "ntk", "cov1", "cov2")


def _concrete(x: Any) -> bool:
  return not any(isinstance(v, jax.core.Tracer)
                 for v in jax.tree_util.tree_leaves(x))


def _arrays(out: Any) -> dict:
  """`name -> array` of a kernel, a namedtuple of arrays, or one array."""
  if hasattr(out, "_asdict"):
    return {k: v for k, v in out._asdict().items() if v is not None}
  fields = {f: getattr(out, f, None) for f in _FIELDS}
  if any(v is not None for v in fields.values()):
    return {k: v for k, v in fields.items() if v is not None}
  return {"kernel": out}


def _maybe_finite(a) -> bool:
  """False if `a` may hold a NaN or an infinity (exactly counted later).

  The sum is non-finite whenever an entry is (and, rarely, when finite
  entries overflow it). On the CPU it is summed in place on the host: a
  device reduction would compile once per new shape, which costs more
  than a small call itself. Elsewhere it is one reduction on the device,
  and only this scalar moves.
  """
  devices = a.devices() if hasattr(a, "devices") else ()
  if all(d.platform == "cpu" for d in devices):
    return bool(np.isfinite(np.sum(np.asarray(a))))
  return bool(jnp.isfinite(jnp.sum(a)))


def warn_if_not_finite(out: Any, x1: Any, x2: Any = None,
                       what: str = "kernel_fn", stacklevel: int = 3) -> bool:
  """Warns (`NonFiniteKernelWarning`) if finite `x1`, `x2` gave a
  non-finite `out`; returns whether it warned.

  Args:
    out: a `Kernel`, a namedtuple of arrays (`get=("nngp", "ntk")`) or an
      array.
    x1, x2: the inputs (pytrees of arrays; `x2` may be None).
    what: who computed `out`, for the message.
  """
  if not _concrete((out, x1, x2)):
    return False
  outputs = [a for a in _arrays(out).values()
             if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.inexact)]
  if all(_maybe_finite(a) for a in outputs):
    return False
  inputs = [np.asarray(v) for v in jax.tree_util.tree_leaves((x1, x2))
            if np.issubdtype(np.asarray(v).dtype, np.inexact)]
  if not inputs or not all(np.isfinite(v).all() for v in inputs):
    return False
  bad = {}
  for name, arr in _arrays(out).items():
    arr = np.asarray(arr)
    if np.issubdtype(arr.dtype, np.inexact):
      count = int(arr.size - np.isfinite(arr).sum())
      if count:
        bad[name] = (count, arr.dtype)
  if not bad:
    return False
  dtype = np.result_type(*[d for _, d in bad.values()])
  x64 = ("" if dtype == np.float64 else
         ", or compute in float64 (jax.config.update('jax_enable_x64', True)"
         " and float64 inputs)")
  scale = max(float(np.max(np.abs(v))) if v.size else 0. for v in inputs)
  warnings.warn(NON_FINITE_KERNEL.format(
      what=f"{what} ({', '.join(bad)})",
      count=sum(c for c, _ in bad.values()), dtype=dtype, scale=scale,
      x64=x64), NonFiniteKernelWarning, stacklevel=stacklevel)
  return True
