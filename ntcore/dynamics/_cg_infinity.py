"""Gradient descent on MSE at infinite time, by conjugate gradients.

At `t = inf` the closed forms of `mse.py` and `ensemble.py` need only
`(K + reg)^{-1}`, no eigenvalues: with residual `f_train(0) - Y`,

    f_train(inf) = Y
    f_test(inf)  = f_test(0) - K_* (K + reg)^{-1} (f_train(0) - Y)

(the training outputs reach the targets along every direction of a
regularized, hence invertible, kernel), and the ensemble's moments at
`t = inf` are the NTK posterior of `gp_inference` (eq. 16). So
`solver="cg"` serves `t=None` and times that are all `inf`; finite times
need the spectrum (`solver="dense"`, or `"auto"`, which falls back to it).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ntcore.dynamics._axes import Layout
from ntcore.dynamics._cg_posterior import CGSolvers, host, product
from ntcore.dynamics._linalg import is_concrete
from ntcore.errors import PredictArgumentError

FINITE_TIME = (
    "{where}: solver={solver!r} solves at infinite time only (t=None or "
    "inf), but t holds finite times. Use solver='dense' (or 'auto', which "
    "falls back to it) for finite times{operator}."
)


def all_infinite(t: Any) -> bool:
  """Whether `t` means infinite time: None, or concrete and all `inf`."""
  if t is None:
    return True
  return is_concrete(t) and bool(np.all(np.isinf(np.asarray(t, float))))


def finite_time_error(where: str, solver: Any, operator: bool
                      ) -> PredictArgumentError:
  note = (" (a KernelOperator has no spectrum: pass the kernel as an array)"
          if operator else "")
  return PredictArgumentError(FINITE_TIME.format(where=where, solver=solver,
                                                 operator=note))


def lead_shape(t: Any) -> tuple[int, ...]:
  return () if t is None else tuple(np.shape(t))


def mse_at_infinity(solvers: CGSolvers, alpha_y, layout: Layout,
                    y_train, f_train, f_test, k_td, t, test_shape):
  """`fx_train`, `fx_test` or both at `t = inf` (`t.shape` prepended).

  Args:
    solvers: the CG solvers of the training kernel (kind `"ntk"`).
    alpha_y: `() -> (K + reg)^{-1} Y`, cached by the caller.
    f_train, f_test: outputs at `t = 0` (None: not asked for; a None
      `f_train` counts as 0 for the test outputs, as NT).
  """
  lead = lead_shape(t)
  solver = solvers("ntk")
  dtype = jnp.result_type(y_train.dtype, solver.op.dtype)
  out = []
  if f_train is not None:
    out.append(jnp.broadcast_to(y_train.astype(dtype),
                                lead + tuple(y_train.shape)))
  if f_test is not None:
    coef = -np.asarray(alpha_y(), np.float64)
    if f_train is not None and not (is_concrete(f_train) and not np.any(
        np.asarray(f_train))):
      if not is_concrete(f_train):
        raise PredictArgumentError(
            "solver='cg' solves for fx_train_0 on concrete values, but it is "
            "traced (jax.jit, vmap or grad). Call outside the transformation.")
      f0 = np.broadcast_to(np.asarray(f_train), y_train.shape)
      coef = coef + solver.solve(host(layout.to_2d, jnp.asarray(f0)),
                                 "ntk: K^-1 fx_train_0")
    delta = product(k_td, coef, dtype)
    delta = layout.from_2d(delta, (), test_shape)
    out.append(jnp.broadcast_to(f_test - delta, lead + delta.shape))
  return tuple(out) if len(out) == 2 else out[0]
