"""`gradient_descent_mse_ensemble`: the infinite ensemble trained on MSE.

Outputs of infinitely wide networks trained by gradient flow on MSE are a
Gaussian process at every time (linearization paper, Corollary 1). With
`E = I - exp(-Θ tau)`, `tau = learning_rate * t / y_train.size`, `Θ` the
NTK and `K` the NNGP (the prior of the outputs at initialization):

    mean(t) = Θ_* Θ^{-1} E Y                                       (eq. 14)
    cov(t)  = K_** + Θ_* Θ^{-1} E K E Θ^{-1} Θ_*^T
                   - (Θ_* Θ^{-1} E K_*^T + h.c.)                   (eq. 15)

and at `t = inf` the NTK posterior of eq. 16. `get="nngp"` trains only the
readout, so `Θ = K` and `cov = K_** - K_* K^{-1} (I - exp(-2 K tau)) K_*^T`.
On the training set (`x_test=None`) `mean = E Y`, `cov = exp(-Θ tau) K
exp(-Θ tau)`. For finite (and infinite) `t` all are spectral functions of
one eigendecomposition per kernel, cached. `t=None`, as in NT, is the GP
posterior of `gp_inference` by Cholesky factorizations (also cached): the
posterior covariance `K_** - K_* K^{-1} K_*^T` cancels much of `K_**`, and
the Cholesky form `|L^{-1} K_*^T|^2` keeps a few more digits than an
eigenbasis. As in NT, `diag_reg` regularizes the training kernel `Θ` (the
NNGP's own spectrum for `get="nngp"`), not the prior `K`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.dynamics import _cg_infinity, _cg_posterior, _kernels, _spectral
from ntcore.dynamics._axes import Axes, Layout, make_2d, zip_2d
from ntcore.dynamics._checks import (check_diag_reg, check_learning_rate,
                                      check_times)
from ntcore.dynamics._linalg import (Regularizer, Spectrum, eager, is_concrete,
                                     spectrum)
from ntcore.dynamics._kwargs import merge_kwargs
from ntcore.dynamics.cg import SolverArg, resolve
from ntcore.dynamics._posterior import Gaussian, Posterior

Array = jnp.ndarray
ArrayLike = Union[int, float, Array]


def gradient_descent_mse_ensemble(
    kernel_fn: Callable,
    x_train: Array,
    y_train: Array,
    learning_rate: float = 1.,
    diag_reg: float = 0.,
    diag_reg_absolute_scale: bool = False,
    trace_axes: Axes = (-1,),
    *,
    solver: SolverArg = None,
    **kernel_fn_train_train_kwargs,
) -> Callable[..., Any]:
  """Mean and covariance of the infinite ensemble of infinitely wide networks.

  Args:
    kernel_fn: `kernel_fn(x1, x2, get, **kwargs)` returning the NNGP/NTK as
      arrays or a namedtuple-like (analytic, Monte Carlo or empirical).
    x_train: training inputs `(n, ...)`.
    y_train: targets `(n, ..., C)`.
    learning_rate: step size.
    diag_reg: strength of the diagonal regularizer of the training kernel.
    diag_reg_absolute_scale: True for absolute units, False for units of
      the kernel's mean diagonal.
    trace_axes: axes of `y_train` absent from the kernels.
    solver: None (default) or `"dense"`: eigendecompositions and Cholesky
      factorizations, as NT; `"cg"` or `ntcore.predict.CG(...)`:
      preconditioned conjugate gradients for infinite time (`t=None` or all
      `inf`), by the CG posterior of `gp_inference` (the train-train
      kernel is still computed whole by `kernel_fn`, then solved without a
      factorization); `"auto"`: CG at infinite time above `AUTO_CG_SIZE`
      training rows. CG's `CGRecord`s go to `predict_fn.cg_records`.
      (`solver` is therefore not passed on to `kernel_fn`.)
    **kernel_fn_train_train_kwargs: passed to `kernel_fn` for the
      train-train kernel; also to the test kernels unless overridden (see
      `predict_fn`).

  Returns:
    `predict_fn(t=None, x_test=None, get=None, compute_cov=False,
    **kernel_fn_test_test_kwargs)`: for each of `get` (`"nngp"`, `"ntk"`,
    a tuple; None for both) the mean `t.shape + (n_test, ..., C)`, or
    `Gaussian(mean, covariance)` with covariance `t.shape + (n_test,
    n_test, ...)` if `compute_cov`. A string `get` gives one result, a
    tuple a namedtuple. `x_test=None` predicts on the training set; `t=None`
    is infinite time. `predict_fn` can be jitted with `get` and
    `compute_cov` static; the train-train kernels and their
    eigendecompositions are computed once, eagerly, and cached.

  Numerics: as `gradient_descent_mse` (zero eigenvalues give exact limits;
  test predictions at infinite time with a singular training kernel, and
  kernels not positive semi-definite beyond round-off, raise
  `SingularKernelError` naming `diag_reg` and float64).

  Raises:
    ShapeError: (from `predict_fn`) if `kernel_fn`'s kernels do not fit
      `y_train` and `trace_axes`.
    PredictArgumentError: if `learning_rate` is negative or not finite;
      (from `predict_fn`) for an unknown `get`, a negative or NaN time, or a
      keyword of `kernel_fn` given two different non-array values.
    SingularKernelError: (from `predict_fn`) see Numerics.
  """
  check_learning_rate(learning_rate, "gradient_descent_mse_ensemble")
  check_diag_reg(diag_reg, "gradient_descent_mse_ensemble")
  y_train = jnp.asarray(y_train)
  layout = Layout.of(y_train, trace_axes)
  reg = Regularizer(diag_reg, diag_reg_absolute_scale)
  k_dd: dict[str, Array] = {}
  spectra: dict[str, Spectrum] = {}

  def train_kernel(names: tuple[str, ...]) -> dict[str, Array]:
    missing = tuple(g for g in names if g not in k_dd)
    if missing:
      k_dd.update(eager(_call, kernel_fn, x_train, None, missing,
                        kernel_fn_train_train_kwargs))
      for g in missing:
        layout.check_kernel(k_dd[g], f"kernel_fn(x_train, None).{g}",
                            square=True)
    return {g: k_dd[g] for g in names}

  options = resolve(solver, math.prod(layout.sample_shape),
                    "gradient_descent_mse_ensemble")
  args = (lambda g: train_kernel((g,))[g], True, y_train, layout, reg,
          "kernel_fn(x_train, None)")
  posterior = (Posterior(*args) if options is None else
               _cg_posterior.CGPosterior(*args, options))

  def eigen(g: str) -> Spectrum:
    if g not in spectra:
      k = train_kernel((g,))[g]
      spectra[g] = spectrum(k, reg, f"kernel_fn(x_train, None).{g}")
    return spectra[g]

  def predict_fn(t: Optional[ArrayLike] = None,
                 x_test: Optional[Array] = None, get: _kernels.Get = None,
                 compute_cov: bool = False,
                 **kernel_fn_test_test_kwargs) -> Any:
    """Mean [and covariance] on `x_test` (None: the train set) at time[s] `t`.

    See `gradient_descent_mse_ensemble` for arguments and returned values.

    Raises:
      SingularKernelError: for test predictions at infinite time when a
        training kernel is singular in the working precision.
    """
    check_times(t, "gradient_descent_mse_ensemble's predict_fn")
    names, single = _kernels.canonical_get(get, ("nngp", "ntk"))
    deps = tuple(g for g in ("nngp", "ntk") if g in names
                 or (g == "nngp" and compute_cov))
    dd = train_kernel(deps)
    if x_test is None:
      td, tt, test_shape = None, None, layout.sample_shape
    else:
      kw_td, kw_tt = merge_kwargs(kernel_fn_train_train_kwargs,
                                  kernel_fn_test_test_kwargs, x_train, x_test)
      td = _call(kernel_fn, x_test, x_train, deps, kw_td)
      test_shape = layout.check_kernel(
          td[deps[0]], "kernel_fn(x_test, x_train)", square=False)
      tt = (_call(kernel_fn, x_test, None, ("nngp",), kw_tt)["nngp"]
            if compute_cov else None)

    at_infinity = options is not None and _cg_infinity.all_infinite(t)
    if t is None or at_infinity:
      # eq. 16 by Cholesky, as NT: more accurate than eigh here (or by CG)
      k_td = None if td is None else _kernels.Pair(td.get("nngp"),
                                                   td.get("ntk"))
      k_tt = tt if x_test is not None else (True if compute_cov else None)
      out = posterior(names, k_td, k_tt)
      if t is not None:
        lead = _cg_infinity.lead_shape(t)
        out = {g: jax.tree_util.tree_map(
            lambda a: jnp.broadcast_to(a, lead + a.shape), v)
               for g, v in out.items()}
      return _kernels.pack(out, names, single)
    if options is not None and solver != "auto":
      raise _cg_infinity.finite_time_error("gradient_descent_mse_ensemble",
                                           solver, False)

    infinite = is_concrete(t) and np.isinf(np.asarray(t)).any()
    out = {}
    for g in names:
      e = eigen(g)
      if x_test is not None and infinite:
        e.require_invertible(f"the infinite-time {g} test prediction")
      mean, cov = _moments(
          e.lam, e.vecs, y_train, t, learning_rate / y_train.size,
          None if td is None else td[g],
          None if td is None or tt is None else td["nngp"],
          dd["nngp"] if compute_cov else None, tt,
          g=g, layout=layout, test_shape=test_shape)
      out[g] = mean if cov is None else Gaussian(mean, cov)
    return _kernels.pack(out, names, single)

  predict_fn.cg_records = getattr(posterior, "records", [])
  return predict_fn


@functools.partial(jax.jit, static_argnames=("g", "layout", "test_shape"))
def _moments(lam, v, y_train, t, rate, k_td, nngp_td, nngp_dd, nngp_tt, *,
             g: str, layout: Layout, test_shape):
  """Mean `t.shape + outputs` and covariance `t.shape + kernel` (or None).

  `k_td` is None on the training set; `nngp_dd` is None without covariance.
  """
  if t is None:
    lead, tau = (), jnp.full((1,), jnp.inf, v.dtype)
  else:
    t = jnp.asarray(t, v.dtype)
    lead, tau = t.shape, t.reshape((-1,)) * rate
  vy = v.T @ layout.to_2d(y_train).astype(v.dtype)
  m = None if nngp_dd is None else v.T @ make_2d(nngp_dd) @ v  # K in Θ's basis
  if k_td is None:  # the training set
    mean = _spectral.sandwich(v, _spectral.growth(lam, tau), vy)
    if m is None:
      cov = None
    elif g == "nngp":  # exp(-Kτ) K exp(-Kτ), NT's regularized K as the prior
      spread = lam[None, :] * _spectral.decay(lam, 2 * tau)
      cov = _spectral.sandwich(v, spread, v.T)
    else:  # exp(-Θτ) K exp(-Θτ)
      d = _spectral.decay(lam, tau)
      cov = jnp.einsum("ai,ti,ij,tj,bj->tab", v, d, m, d, v)
  else:
    w = make_2d(k_td) @ v
    p = _spectral.phi(lam, tau)
    mean = _spectral.sandwich(w, p, vy)
    if nngp_tt is None:
      cov = None
    else:
      if g == "nngp":
        cov = -_spectral.sandwich(w, _spectral.phi(lam, 2 * tau), w.T)
      else:
        cross = _spectral.sandwich(w, p, v.T @ make_2d(nngp_td).T)
        cov = (jnp.einsum("ai,ti,ij,tj,bj->tab", w, p, m, p, w)
               - cross - jnp.swapaxes(cross, 1, 2))
      cov = make_2d(nngp_tt)[None] + cov
  mean = layout.from_2d(mean, lead, test_shape)
  if cov is not None:
    cov = zip_2d((cov + jnp.swapaxes(cov, 1, 2)) / 2, lead, test_shape)
  return mean, cov


def _call(kernel_fn: Callable, x1, x2, names: tuple[str, ...],
          kwargs: dict) -> dict[str, Array]:
  """`kernel_fn(x1, x2, names)` as a dict, whatever container it returns."""
  k = kernel_fn(x1, x2, names, **kwargs)
  if _kernels.is_array(k) and len(names) == 1:
    return {names[0]: k}
  return {g: _kernels.kernel_attr(k, g, "kernel_fn's output") for g in names}
