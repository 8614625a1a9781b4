"""`gradient_descent_mse`: closed-form gradient flow on the MSE loss.

With loss `1/(2N) |f(X) - Y|^2`, `N = y_train.size`, and a fixed kernel `K`
(the NTK, analytic or empirical), gradient flow is linear (linearization
paper, eqs. 8-11). With `tau = learning_rate * t / N`:

    f_train(t) = f_train(0) - (I - exp(-K tau)) (f_train(0) - Y)
    f_test(t)  = f_test(0) - K_* K^{-1} (I - exp(-K tau)) (f_train(0) - Y)

with `K_*` the test-train kernel.
Both are functions of `K`'s eigenvalues, so one eigendecomposition, made on
the first call and cached, serves every `t` and every later call; `t=None`
(infinite time) uses it too, so that `t=inf` and `t=None` agree.
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Protocol, Union

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.dynamics import _cg_infinity, _cg_posterior, _kernels, _spectral
from ntcore.dynamics._checks import (check_diag_reg, check_learning_rate,
                                      check_times)
from ntcore.dynamics._axes import Axes, Layout, make_2d
from ntcore.dynamics._linalg import Regularizer, as_float, is_concrete, spectrum
from ntcore.dynamics.cg import SolverArg
from ntcore.errors import PredictArgumentError, ShapeError

Array = jnp.ndarray
ArrayOrScalar = Union[None, int, float, Array]


class PredictFn(Protocol):
  """`predict_fn(t, fx_train_0, fx_test_0, k_test_train)` of the above."""

  def __call__(self, t: ArrayOrScalar = None, fx_train_0: ArrayOrScalar = 0.,
               fx_test_0: ArrayOrScalar = None,
               k_test_train: Optional[Array] = None
               ) -> Union[Array, tuple[Array, Array]]:
    ...


def gradient_descent_mse(
    k_train_train: Array,
    y_train: Array,
    learning_rate: float = 1.,
    diag_reg: float = 0.,
    diag_reg_absolute_scale: bool = False,
    trace_axes: Axes = (-1,),
    *,
    solver: SolverArg = None,
) -> PredictFn:
  """Outputs of continuous-time gradient descent on MSE, in closed form.

  Times are in steps: `t` and `learning_rate` are interchangeable
  (`absolute_time = learning_rate * t`).

  Numerics (sturdier than NT): eigenvalues within round-off of 0 are set to
  0 and give the exact limit `(1 - exp(-lam tau)) / lam -> tau`, so finite
  times never produce NaN, even for singular kernels. Infinite time
  (`t=None` or `inf`) needs `K^{-1}` for test predictions: a singular kernel
  then raises `SingularKernelError` (naming `diag_reg` and float64), and any
  kernel not positive semi-definite beyond round-off raises at every `t`.
  These checks run whenever the kernel's values are known, including when
  the returned `predict_fn` is jitted. Only if `k_train_train` itself is
  traced (this function called inside `jit`) are they impossible; then
  negative eigenvalues are clamped to 0 as in NT, and infinite time uses
  the pseudo-inverse (the minimum-norm interpolant) instead of raising.

  Args:
    k_train_train: kernel on the training set, `(n, n, h, h, ...)`: one pair
      of axes per non-traced axis of `y_train` (`(n, n)` for `y_train:
      (n, C)` and the default `trace_axes`).
    y_train: targets, `(n, ..., C)`.
    learning_rate: step size.
    diag_reg: strength of the diagonal regularizer added to the kernel.
    diag_reg_absolute_scale: True for `diag_reg` in absolute units, False
      for units of the kernel's mean diagonal.
    trace_axes: axes of `y_train` absent from the kernels, which stand for
      `K ⊗ I` along them; must match how the kernels were computed.
    solver: None (default) or `"dense"`: the eigendecomposition, as NT
      (CG when `k_train_train` is a `KernelOperator`); `"cg"` or
      `ntcore.predict.CG(...)`: preconditioned conjugate gradients, for
      infinite time only (`t=None` or all `inf`; see `_cg_infinity.py`),
      its `CGRecord`s appended to `predict_fn.cg_records`; `"auto"`: CG at
      infinite time above `AUTO_CG_SIZE` training rows, else dense.

  Returns:
    `predict_fn(t=None, fx_train_0=0., fx_test_0=None, k_test_train=None)`,
    returning `fx_train_t`, `fx_test_t` (when `fx_train_0` is None) or
    `(fx_train_t, fx_test_t)`, each with `t`'s shape prepended. `t` is a
    scalar or an array of any shape; `t=None` means infinite time.

  Raises:
    ShapeError: if the kernel does not fit `y_train` and `trace_axes`.
    PredictArgumentError: if `learning_rate` is negative or not finite.
  """
  check_learning_rate(learning_rate, "gradient_descent_mse")
  check_diag_reg(diag_reg, "gradient_descent_mse")
  y_train = jnp.asarray(y_train)
  layout = Layout.of(y_train, trace_axes)
  options, k_train_train = _cg_posterior.choose(
      solver, k_train_train, math.prod(layout.sample_shape),
      "gradient_descent_mse")
  operator = _kernels.is_operator(k_train_train)
  if not operator:
    k_train_train = as_float(k_train_train)
  layout.check_kernel(k_train_train, "k_train_train", square=True)
  reg = Regularizer(diag_reg, diag_reg_absolute_scale)
  cache = []
  solvers = alpha_y = None
  if options is not None:
    solvers = _cg_posterior.CGSolvers(
        lambda g: k_train_train, reg, options, "k_train_train",
        lambda k, what: None)
    alpha_y = functools.lru_cache(maxsize=None)(lambda: solvers("ntk").solve(
        _cg_posterior.host(layout.to_2d, y_train), "K^-1 y_train"))

  def eigen():
    if not cache:
      cache.append(spectrum(k_train_train, reg, "k_train_train"))
    return cache[0]

  def predict_fn(t: ArrayOrScalar = None, fx_train_0: ArrayOrScalar = 0.,
                 fx_test_0: ArrayOrScalar = None,
                 k_test_train: Optional[Array] = None
                 ) -> Union[Array, tuple[Array, Array]]:
    """Outputs on the train [and test] set at time[s] `t` (None: infinity).

    Args:
      t: scalar or array of times in steps; None for infinite time.
      fx_train_0: train outputs at `t=0`, broadcastable to `y_train`; None
        to skip train predictions (test ones then take them as 0, as NT).
      fx_test_0: test outputs at `t=0`; None to skip test predictions.
      k_test_train: `(n_test, n, ...)` kernel, needed with `fx_test_0`.

    Returns:
      `fx_train_t`, `fx_test_t` or both, with `t.shape` prepended.

    Raises:
      ShapeError: on misshapen arguments.
      PredictArgumentError: if both outputs are None, `fx_test_0` comes
        without `k_test_train`, or a time is negative or NaN.
      SingularKernelError: for test predictions at infinite time when the
        (regularized) kernel is singular in the working precision.
    """
    check_times(t, "gradient_descent_mse's predict_fn")
    train, test = fx_train_0 is not None, fx_test_0 is not None
    if not (train or test):
      raise PredictArgumentError(
          "fx_train_0 and fx_test_0 are both None: nothing to predict. Pass "
          "fx_train_0 (e.g. 0.) or fx_test_0.")
    if train:
      _check_broadcast(fx_train_0, y_train.shape, "fx_train_0", "y_train")
    test_shape = None
    if test:
      if k_test_train is None:
        raise PredictArgumentError(
            "fx_test_0 was given but k_test_train is None: test predictions "
            "need the test-train kernel. Pass k_test_train, or "
            "fx_test_0=None.")
      test_shape = layout.check_kernel(k_test_train, "k_test_train",
                                       square=False)
      _check_broadcast(fx_test_0, layout.output_shape(test_shape),
                       "fx_test_0", "the test outputs")
    else:
      k_test_train = None
    if t is None and not test:  # NT: the train set is interpolated exactly
      return y_train.astype(jnp.result_type(y_train, k_train_train.dtype))
    if options is not None:
      if _cg_infinity.all_infinite(t):
        return _cg_infinity.mse_at_infinity(
            solvers, alpha_y, layout, y_train, fx_train_0 if train else None,
            fx_test_0 if test else None, k_test_train, t, test_shape)
      if operator or solver != "auto":
        raise _cg_infinity.finite_time_error("gradient_descent_mse", solver,
                                             operator)

    e = eigen()
    if test and (t is None or (
        is_concrete(t) and np.isinf(np.asarray(t)).any())):
      e.require_invertible("the infinite-time test prediction")
    return _predict(e.lam, e.vecs, y_train, fx_train_0, fx_test_0,
                    k_test_train, t, learning_rate / y_train.size,
                    layout=layout, test_shape=test_shape)

  predict_fn.cg_records = [] if solvers is None else solvers.records
  return predict_fn


@functools.partial(jax.jit, static_argnames=("layout", "test_shape"))
def _predict(lam, vecs, y_train, f_train, f_test, k_td, t, rate, *,
             layout: Layout, test_shape):
  """The arithmetic of `predict_fn`, one compiled function per signature."""
  train, test = f_train is not None, f_test is not None
  f0 = jnp.broadcast_to(f_train if train else 0., y_train.shape)
  resid = layout.to_2d(f0 - y_train).astype(vecs.dtype)
  if t is None:
    lead, tau = (), jnp.full((1,), jnp.inf, vecs.dtype)
  else:
    t = jnp.asarray(t, vecs.dtype)
    lead, tau = t.shape, t.reshape((-1,)) * rate
  out = []
  if train:
    if t is None:
      out.append(y_train.astype(jnp.result_type(y_train, vecs)))
    else:
      g = _spectral.growth(lam, tau)
      delta = layout.from_2d(_spectral.in_basis(vecs, g, resid), lead,
                             layout.sample_shape)
      out.append(jnp.broadcast_to(f0, delta.shape) - delta)
  if test:
    w = make_2d(k_td).astype(vecs.dtype) @ vecs
    delta = _spectral.sandwich(w, _spectral.phi(lam, tau), vecs.T @ resid)
    delta = layout.from_2d(delta, lead, test_shape)
    out.append(jnp.broadcast_to(f_test, delta.shape) - delta)
  return tuple(out) if len(out) == 2 else out[0]


def _check_broadcast(x, shape: tuple[int, ...], name: str, what: str) -> None:
  x_shape = tuple(np.shape(x))
  try:
    ok = np.broadcast_shapes(x_shape, shape) == shape
  except ValueError:
    ok = False
  if not ok:
    raise ShapeError(f"{name} has shape {x_shape}, which does not broadcast "
                     f"to {shape}, the shape of {what}.")
