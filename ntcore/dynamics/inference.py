"""`gp_inference`: the GP posterior of NNGP, NTK and NTK-GP, and `Gaussian`.

With train-train kernel `K` (NNGP) / `Θ` (NTK), test-train `K_*`/`Θ_*` and
test-test `K_**`/`Θ_**` (linearization paper, eqs. 13 and 16):

* nngp:  mean `K_* K^{-1} Y`, cov `K_** - K_* K^{-1} K_*^T` — the exact
  posterior of the infinitely wide Bayesian network;
* ntk:   mean `Θ_* Θ^{-1} Y`, cov `K_** + Θ_* Θ^{-1} K Θ^{-1} Θ_*^T
  - (Θ_* Θ^{-1} K_*^T + h.c.)` — the infinite ensemble trained to
  convergence, whose prior is the NNGP;
* ntkgp: the GP posterior with the NTK as covariance (He et al. 2020,
  "Bayesian Deep Ensembles via the Neural Tangent Kernel").

`diag_reg` regularizes the inverted kernel only. One Cholesky factorization
per kernel, made on first use and cached, serves all calls.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax.numpy as jnp

from ntcore.dynamics import _cg_posterior, _kernels
from ntcore.dynamics._axes import Axes, Layout
from ntcore.dynamics._checks import check_diag_reg
from ntcore.dynamics._linalg import Regularizer
from ntcore.dynamics._posterior import Gaussian, Posterior
from ntcore.dynamics.cg import SolverArg

Array = jnp.ndarray

__all__ = ["Gaussian", "gp_inference"]


def gp_inference(
    k_train_train: Any,
    y_train: Array,
    diag_reg: float = 0.,
    diag_reg_absolute_scale: bool = False,
    trace_axes: Axes = (-1,),
    *,
    solver: SolverArg = None,
) -> Callable[..., Any]:
  """The 'posterior' of NNGP, NTK (the ensemble at `t=inf`) or NTK-GP.

  Args:
    k_train_train: train-train kernel `(n, n, ...)`: an array, a
      `KernelOperator` (a kernel on disk or computed in panels), an
      `ntcore.Kernel`, or a namedtuple-like with `nngp`/`ntk` (arrays or
      operators). The NTK covariance needs both.
    y_train: targets `(n, ..., C)`.
    diag_reg: strength of the diagonal regularizer of the inverted kernel.
    diag_reg_absolute_scale: True for absolute units, False for units of
      the kernel's mean diagonal.
    trace_axes: axes of `y_train` absent from the kernels.
    solver: how `(K + reg)^{-1}` is applied. None (default): a Cholesky
      factorization, as NT (CG when `k_train_train` holds a
      `KernelOperator`); `"dense"`: the factorization (an operator is
      assembled); `"cg"`: preconditioned conjugate gradients with default
      options; `"auto"`: CG above `AUTO_CG_SIZE` training rows;
      `ntcore.predict.CG(tol=..., maxiter=..., rank=...)`: CG with those
      options. CG computes means and covariances exactly to its tolerance
      (the covariance by one solve with the call's test points as
      right-hand sides, see `_cg_posterior.py`); its `CGRecord`s
      (iterations, residuals) are appended to `predict_fn.cg_records`.

  Returns:
    `predict_fn(get=None, k_test_train=None, k_test_test=None)`. `get` is
    `"nngp"`, `"ntk"`, `"ntkgp"` or a tuple (None: `("nngp", "ntk")`); a
    string gives one result, a tuple a namedtuple of them. Each result is
    the mean `(n_test, ..., C)`, or `Gaussian(mean, covariance)` with the
    covariance `(n_test, n_test, ...)` when `k_test_test` is given. With
    `k_test_train=None` the training set is returned: `y_train`, and a zero
    covariance if `k_test_test` is not None (any value, e.g. True).

    `predict_fn` can be jitted with `get` static.

  Numerics: a Cholesky factorization that fails, or has a pivot at
  round-off level, raises `SingularKernelError` naming `diag_reg` and
  float64 (NT returns NaN), also when `predict_fn` is jitted, since the
  factorization of the closed-over kernel is made eagerly. Only a traced
  `k_train_train` (this function called inside `jit`) cannot be checked;
  then a failed factorization gives NaN, as in NT.

  Raises:
    ShapeError: if a kernel does not fit `y_train` and `trace_axes`.
    KernelRequirementError: if a kernel lacks the `nngp`/`ntk` needed.
    PredictArgumentError: if `diag_reg` is negative or not finite; (from
      `predict_fn`) for an unknown `get`.
    SingularKernelError: (from `predict_fn`) if a kernel to invert is
      singular or not positive definite in the working precision.
    CGConvergenceError: (from `predict_fn`, solver CG) if CG does not reach
      its tolerance; the message names the remedies.
  """
  check_diag_reg(diag_reg, "gp_inference")
  y_train = jnp.asarray(y_train)
  layout = Layout.of(y_train, trace_axes)
  options, k_train_train = _cg_posterior.choose(
      solver, k_train_train, math.prod(layout.sample_shape), "gp_inference")
  if options is not None:  # NumPy kernels stay where they are, uncopied
    k_train_train = _cg_posterior.as_operators(k_train_train)
  k_train_train = _kernels.materialize(k_train_train)
  layout.check_kernel(_kernels.first_kernel(k_train_train, "k_train_train"),
                      "k_train_train", square=True)
  args = (lambda g: _kernels.kernel_attr(k_train_train, g, "k_train_train"),
          _kernels.has_both(k_train_train), y_train, layout,
          Regularizer(diag_reg, diag_reg_absolute_scale), "k_train_train")
  posterior = (Posterior(*args) if options is None else
               _cg_posterior.CGPosterior(*args, options))

  def predict_fn(get: _kernels.Get = None, k_test_train: Any = None,
                 k_test_test: Any = None) -> Any:
    """Posterior mean [and covariance] on the test set (None: the train set).

    See `gp_inference` for arguments and returned values.
    """
    names, single = _kernels.canonical_get(get, ("nngp", "ntk", "ntkgp"))
    return _kernels.pack(posterior(names, k_test_train, k_test_test), names,
                         single)

  predict_fn.cg_records = getattr(posterior, "records", [])
  return predict_fn
