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

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from ntcore.dynamics import _kernels
from ntcore.dynamics._axes import Axes, Layout, make_2d, zip_2d
from ntcore.dynamics._checks import check_diag_reg
from ntcore.dynamics._linalg import Regularizer, cholesky, eager
from ntcore.dynamics.cg import SolverArg
from ntcore.errors import KernelRequirementError, ShapeError

Array = jnp.ndarray


class Gaussian(NamedTuple):
  """A `(mean, covariance)` pair.

  Attributes:
    mean: shaped like the outputs, e.g. `(n_test, C)`.
    covariance: shaped like the kernel, e.g. `(n_test, n_test)`.
  """

  mean: Array
  covariance: Array


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
  from ntcore.dynamics import _cg_posterior  # pylint: disable=import-outside-toplevel
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


class Posterior:
  """GP posteriors given train-train kernels, with their factorizations cached.

  Args:
    train: `train(g)` is the train-train `g` kernel (`"nngp"`, `"ntk"`).
    distinct: whether `train` gives a distinct NNGP and NTK (the NTK
      covariance needs both).
    y_train: targets.
    layout: `y_train`'s layout.
    reg: the diagonal regularizer of the inverted kernels.
    name: the user's name of the train-train kernel, for messages.
  """

  def __init__(self, train: Callable[[str], Array], distinct: bool,
               y_train: Array, layout: Layout, reg: Regularizer, name: str):
    self.train, self.distinct, self.name = train, distinct, name
    self.y_train, self.layout, self.reg = y_train, layout, reg
    self.factors: dict[str, Array] = {}
    self.inv_y: dict[str, Array] = {}

  def factor(self, g: str) -> Array:
    """The Cholesky factor of the `g` kernel, computed once."""
    if g not in self.factors:
      k = self.train(g)
      self.layout.check_kernel(k, f"{self.name}.{g}", square=True)
      self.factors[g] = cholesky(k, self.reg, f"{self.name}.{g}",
                                 f"the {g} posterior")
    return self.factors[g]

  def k_inv_y(self, g: str) -> Array:
    """`K^{-1} Y` as a `(P, Q)` matrix, computed once."""
    if g not in self.inv_y:
      self.inv_y[g] = eager(_solve_y, self.factor(g), self.y_train,
                            layout=self.layout)
    return self.inv_y[g]

  def mean(self, kind: str, k_td: Array, test_shape) -> Array:
    """`K_* (K + reg)^{-1} Y` in the output layout."""
    return _mean(k_td, self.k_inv_y(kind), layout=self.layout,
                 test_shape=test_shape)

  def gp_cov(self, kind: str, k_td: Array, k_tt: Array, test_shape) -> Array:
    """`K_** - K_* (K + reg)^{-1} K_*^T` of the `kind` kernel."""
    return _gp_cov(self.factor(kind), k_td, k_tt, test_shape=test_shape)

  def ntk_cov(self, ntk_td: Array, nngp_td: Array, nngp_tt: Array,
              test_shape) -> Array:
    """Eq. 16, the covariance of the ensemble trained to convergence."""
    return _ntk_cov(self.factor("ntk"), ntk_td, nngp_td, self.train("nngp"),
                    nngp_tt, test_shape=test_shape)

  def __call__(self, names: tuple[str, ...], k_test_train: Any,
               k_test_test: Any) -> dict[str, Any]:
    """`{g: mean or Gaussian}` for each of `names`, as `gp_inference` says."""
    out = {}
    for g in names:
      kind = "ntk" if g == "ntkgp" else g
      if k_test_train is None:  # train set: interpolated exactly, as in NT
        k_dd = self.train(kind)
        mean = self.y_train.astype(jnp.result_type(self.y_train, k_dd.dtype))
        out[g] = (mean if k_test_test is None else
                  Gaussian(mean, jnp.zeros(k_dd.shape, k_dd.dtype)))
        continue
      k_td = _kernels.kernel_attr(k_test_train, kind, "k_test_train")
      test_shape = self.layout.check_kernel(k_td, "k_test_train",
                                            square=False)
      mean = self.mean(kind, k_td, test_shape)
      if k_test_test is None:
        out[g] = mean
        continue
      prior = "ntk" if g == "ntkgp" else "nngp"
      k_tt = _kernels.kernel_attr(k_test_test, prior, "k_test_test")
      _check_test_test(k_tt, test_shape)
      if g == "ntk":
        if not (self.distinct and _kernels.has_both(k_test_train)):
          raise KernelRequirementError(NTK_COV_NEEDS_BOTH)
        cov = self.ntk_cov(k_td, _kernels.kernel_attr(k_test_train, "nngp",
                                                      ""), k_tt, test_shape)
      else:
        cov = self.gp_cov(kind, k_td, k_tt, test_shape)
      out[g] = Gaussian(mean, cov)
    return out


NTK_COV_NEEDS_BOTH = (
    "The NTK posterior covariance (get='ntk' with k_test_test) needs both the "
    "NNGP and the NTK of k_train_train and k_test_train: pass ntcore.Kernel "
    "objects or namedtuples with nngp and ntk, e.g. kernel_fn(x1, x2, "
    "('nngp', 'ntk')).")


@functools.partial(jax.jit, static_argnames=("layout",))
def _solve_y(factor: Array, y_train: Array, *, layout: Layout) -> Array:
  y2 = layout.to_2d(y_train).astype(factor.dtype)
  return jsl.cho_solve((factor, True), y2)


@functools.partial(jax.jit, static_argnames=("layout", "test_shape"))
def _mean(k_td: Array, inv_y: Array, *, layout: Layout, test_shape) -> Array:
  return layout.from_2d(make_2d(k_td) @ inv_y, (), test_shape)


@functools.partial(jax.jit, static_argnames=("test_shape",))
def _gp_cov(factor: Array, k_td: Array, k_tt: Array, *, test_shape) -> Array:
  """`K_** - K_* K^{-1} K_*^T`, as `K_** - |L^{-1} K_*^T|^2` so it stays PSD."""
  half = jsl.solve_triangular(factor, make_2d(k_td).T, lower=True)
  return _finish(make_2d(k_tt), -half.T @ half, test_shape)


@functools.partial(jax.jit, static_argnames=("test_shape",))
def _ntk_cov(factor: Array, ntk_td: Array, nngp_td: Array, nngp_dd: Array,
             nngp_tt: Array, *, test_shape) -> Array:
  """Eq. 16: `K_** + A K A^T - (A K_*^T + h.c.)`, `A = Θ_* Θ^{-1}`."""
  ntk_td = make_2d(ntk_td)
  a_t = jsl.cho_solve((factor, True), ntk_td.T)  # Θ^{-1} Θ_*^T, (n, n_test)
  cross = ntk_td @ jsl.cho_solve((factor, True), make_2d(nngp_td).T)
  cov = a_t.T @ make_2d(nngp_dd) @ a_t - cross - cross.T
  return _finish(make_2d(nngp_tt), cov, test_shape)


def _finish(k_tt: Array, cov: Array, test_shape) -> Array:
  """`k_tt + cov`, symmetrized, in the kernel layout."""
  return zip_2d(k_tt + (cov + cov.T) / 2, (), test_shape)


def _check_test_test(k_tt: Array, test_shape: tuple[int, ...]) -> None:
  want = tuple(s for s in test_shape for _ in range(2))
  if tuple(k_tt.shape) != want:
    raise ShapeError(f"k_test_test has shape {tuple(k_tt.shape)}, but "
                     f"k_test_train's test axes {test_shape} need {want}.")
