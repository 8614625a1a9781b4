"""The log marginal likelihood of the targets under the NNGP or the NTK-GP.

With the train-train kernel `K` (`"nngp"`, or `"ntk"` for the NTK-GP of He
et al. 2020), regularized to `K_r = K + diag_reg * I`, each of the `C`
output columns `y_c` is an independent GP draw sharing that kernel
(Rasmussen & Williams 2006, eq. 2.30):

    log p(Y) = sum_c [-y_c^T K_r^{-1} y_c / 2] - C log|K_r| / 2 - n C log(2 pi) / 2

computed from one Cholesky factor `K_r = L L^T` — `log|K_r| = 2 sum log L_ii`
and `y^T K_r^{-1} y = |L^{-1} y|^2` — with the regularizer and the round-off
checks of `gp_inference`. Everything is differentiable with `jax.grad`: with
respect to `diag_reg`, and, when the network is built inside the
differentiated function (a stax layer keeps its `W_std` from construction),
with respect to the network's hyper-parameters through `kernel_fn`.

`fit_marginal_likelihood` maximizes it over positive hyper-parameters,
optimized as logarithms with SciPy's L-BFGS-B (SciPy is a dependency of JAX).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from ntcore.dynamics import _kernels
from ntcore.dynamics._axes import Axes, Layout
from ntcore.dynamics._checks import check_diag_reg
from ntcore.dynamics._linalg import Regularizer, cholesky
from ntcore.errors import PredictArgumentError

Array = jnp.ndarray

NOISE = "diag_reg"
"""The name under which `fit_marginal_likelihood` fits the regularizer."""


def log_marginal_likelihood(
    k_train_train: Any,
    y_train: Array,
    diag_reg: Any = 0.,
    diag_reg_absolute_scale: bool = False,
    trace_axes: Axes = (-1,),
    get: str = "nngp",
) -> Array:
  """`log p(y_train)` under a zero-mean GP with covariance `k_train_train`.

  `sum_c [-y_c^T K_r^{-1} y_c / 2] - C log|K_r| / 2 - n C log(2 pi) / 2`,
  `K_r = K + diag_reg * I`: the columns `y_c` (the traced axes of
  `y_train`, e.g. the logits) are independent GPs with one shared kernel.

  Args:
    k_train_train: `(n, n, ...)` kernel: an array, or an `ntcore.Kernel`
      (or namedtuple-like) whose `get` entry is used.
    y_train: targets `(n, ..., C)`.
    diag_reg: the regularizer (the observation-noise variance), traced or
      not; in units of the kernel's mean diagonal unless
      `diag_reg_absolute_scale`.
    diag_reg_absolute_scale: True for absolute units.
    trace_axes: axes of `y_train` absent from the kernel.
    get: `"nngp"` (the Bayesian network's prior) or `"ntk"` (the NTK-GP),
      when `k_train_train` is not an array.

  Returns:
    A scalar in the kernel's dtype (float32 in, float32 out).

  Raises:
    ShapeError: if the kernel does not fit `y_train` and `trace_axes`.
    KernelRequirementError: if `k_train_train` lacks `get`.
    PredictArgumentError: for a negative `diag_reg` or an unknown `get`.
    SingularKernelError: if `K_r` is not positive definite in the working
      precision (checked when the kernel holds values; a traced kernel that
      fails gives NaN, as `gp_inference` does).
  """
  (get,), _ = _kernels.canonical_get(get, ("nngp", "ntk"))
  check_diag_reg(diag_reg, "log_marginal_likelihood")
  y_train = jnp.asarray(y_train)
  k = _kernels.kernel_attr(_kernels.materialize(k_train_train), get,
                           "k_train_train")
  layout = Layout.of(y_train, trace_axes)
  layout.check_kernel(k, "k_train_train", square=True)
  factor = cholesky(k, Regularizer(diag_reg, diag_reg_absolute_scale),
                    "k_train_train", "the marginal likelihood")
  y2 = layout.to_2d(y_train).astype(factor.dtype)
  return _gaussian_log_density(factor, y2)


@jax.jit
def _gaussian_log_density(factor: Array, y2: Array) -> Array:
  """`sum_c log N(y2[:, c] | 0, L L^T)` for the factor `L` that `cholesky`
  returns (jitted, so that a column-major `L` is read in place)."""
  p, q = y2.shape
  white = jsl.solve_triangular(factor, y2, lower=True)
  log_det = 2 * jnp.sum(jnp.log(jnp.diagonal(factor)))
  return (-jnp.sum(white ** 2) / 2 - q * log_det / 2
          - p * q * math.log(2 * math.pi) / 2)


def kernel_log_marginal_likelihood(
    kernel_fn: Callable[..., Any],
    x_train: Any,
    y_train: Array,
    get: str = "nngp",
    diag_reg: Any = 0.,
    diag_reg_absolute_scale: bool = False,
    trace_axes: Axes = (-1,),
    **kernel_fn_kwargs,
) -> Array:
  """`log_marginal_likelihood` of `kernel_fn(x_train, None, get)`.

  To differentiate with respect to a network's hyper-parameters, build the
  network inside the differentiated function:

      def lml(w_std):
        _, _, kernel_fn = stax.serial(stax.Dense(1, W_std=w_std), ...)
        return kernel_log_marginal_likelihood(kernel_fn, x, y)
      jax.grad(lml)(1.5)

  Args:
    kernel_fn: an analytic (or batched, `ntcore.batch`) kernel function.
    x_train: training inputs `(n, ...)`.
    y_train: targets `(n, C)`.
    get: `"nngp"` or `"ntk"` (the NTK-GP).
    diag_reg, diag_reg_absolute_scale, trace_axes: as in
      `log_marginal_likelihood`.
    **kernel_fn_kwargs: passed on to `kernel_fn`.

  Returns:
    A scalar.
  """
  (get,), _ = _kernels.canonical_get(get, ("nngp", "ntk"))
  k = kernel_fn(x_train, None, get, **kernel_fn_kwargs)
  return log_marginal_likelihood(k, y_train, diag_reg, diag_reg_absolute_scale,
                                 trace_axes)


class MarginalFit(NamedTuple):
  """What `fit_marginal_likelihood` found, and how.

  Attributes:
    params: the fitted values, `{name: float}`, fixed ones included.
    log_marginal_likelihood: its value at `params`.
    history: `[(params, log_marginal_likelihood)]` at the start and after
      each L-BFGS iteration.
    result: SciPy's `OptimizeResult` (`success`, `message`, `nit`, `nfev`;
      `x` holds the logarithms of the fitted values).
  """

  params: dict
  log_marginal_likelihood: float
  history: list
  result: Any


def fit_marginal_likelihood(
    make: Callable[..., Any],
    x_train: Any,
    y_train: Array,
    init: Mapping[str, float],
    fixed: Optional[Mapping[str, Any]] = None,
    get: str = "nngp",
    diag_reg: float = 0.,
    diag_reg_absolute_scale: bool = True,
    bounds: Optional[Mapping[str, tuple[float, float]]] = None,
    trace_axes: Axes = (-1,),
    maxiter: int = 200,
) -> MarginalFit:
  """Maximizes `log p(y_train)` over positive network hyper-parameters.

  Each fitted value `v` is optimized as `log v` (so it stays positive) by
  SciPy's L-BFGS-B on the value and `jax.grad` of the negative log marginal
  likelihood, jitted once. The network is rebuilt from `make` at every
  evaluation, so the gradient reaches the hyper-parameters it bakes in.

  Args:
    make: `make(**params) -> (init_fn, apply_fn, kernel_fn)`, e.g.
      `lambda W_std, b_std: models.FullyConnected(2, W_std, b_std)`.
    x_train: training inputs `(n, ...)`.
    y_train: targets `(n, C)`.
    init: starting values of the fitted parameters, all > 0. The name
      `"diag_reg"` fits the regularizer (the noise variance) instead of
      passing it to `make`.
    fixed: further keyword arguments of `make`, not fitted (`depth=3`).
    get: `"nngp"` or `"ntk"` (the NTK-GP).
    diag_reg: the regularizer when it is not fitted.
    diag_reg_absolute_scale: units of `diag_reg` (fitted or not); True
      (default) makes it the noise variance in the kernel's units.
    bounds: optional `{name: (low, high)}` limits, `0 < low < high`.
    trace_axes: as in `log_marginal_likelihood`.
    maxiter: most L-BFGS iterations.

  Returns:
    A `MarginalFit`.

  Raises:
    PredictArgumentError: if `init` is empty, a value or bound is not
      positive and finite, or a bound names a parameter not in `init`.
    SingularKernelError: if the kernel at `init` is singular (add or fit
      `diag_reg`).
  """
  import scipy.optimize  # pylint: disable=import-outside-toplevel
  names = _check_init(init, bounds)
  fixed = dict(fixed or {})
  x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)
  n_terms = max(y_train.size, 1)

  def lml(log_values: Array) -> Array:
    values = dict(zip(names, jnp.exp(log_values)))
    reg = values.pop(NOISE, diag_reg)
    kernel_fn = make(**fixed, **values)[2]
    return kernel_log_marginal_likelihood(
        kernel_fn, x_train, y_train, get, reg, diag_reg_absolute_scale,
        trace_axes)

  # Per target entry, so that L-BFGS's tolerances do not depend on n.
  loss = jax.jit(jax.value_and_grad(lambda z: -lml(z) / n_terms))
  z0 = np.log(np.array([float(init[k]) for k in names]))
  lml(jnp.asarray(z0))  # eager: a singular initial kernel raises here

  def objective(z):
    value, grad = loss(jnp.asarray(z))
    return float(value), np.asarray(grad, dtype=float)

  history = [(_as_params(names, z0), -objective(z0)[0] * n_terms)]

  def record(intermediate_result):
    history.append((_as_params(names, intermediate_result.x),
                    -float(intermediate_result.fun) * n_terms))

  bounds = bounds or {}
  log_bounds = [tuple(np.log(bounds[k])) if k in bounds else (None, None)
                for k in names]
  result = scipy.optimize.minimize(
      objective, z0, jac=True, method="L-BFGS-B", bounds=log_bounds,
      callback=record, options={"maxiter": maxiter})
  params = {**fixed, **_as_params(names, result.x)}
  return MarginalFit(params, -float(result.fun) * n_terms, history, result)


def _as_params(names: tuple[str, ...], z) -> dict:
  return {k: float(np.exp(v)) for k, v in zip(names, np.asarray(z))}


def _check_init(init: Mapping[str, float],
                bounds: Optional[Mapping[str, tuple[float, float]]]
                ) -> tuple[str, ...]:
  """The names of `init`, after checking values and bounds."""
  names = tuple(init)
  if not names:
    raise PredictArgumentError(
        "fit_marginal_likelihood: init is empty; give the starting values of "
        "the parameters to fit, e.g. init={'W_std': 1.5, 'b_std': 0.1}.")
  for k in names:
    v = float(init[k])
    if not (np.isfinite(v) and v > 0):
      raise PredictArgumentError(
          f"fit_marginal_likelihood: init[{k!r}]={init[k]!r} must be a "
          "finite number > 0 (each parameter is fitted as its logarithm); "
          "keep a parameter that may be 0 in `fixed`.")
  for k, pair in (bounds or {}).items():
    if k not in init:
      raise PredictArgumentError(
          f"fit_marginal_likelihood: bounds name {k!r}, which is not fitted; "
          f"the fitted parameters are {names}.")
    low, high = (float(b) for b in pair)
    if not (0 < low < high and np.isfinite(high)):
      raise PredictArgumentError(
          f"fit_marginal_likelihood: bounds[{k!r}]={tuple(pair)!r} must be "
          "(low, high) with 0 < low < high < inf.")
  return names
