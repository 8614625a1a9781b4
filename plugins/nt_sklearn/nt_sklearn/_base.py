"""What the four estimators share: parameters, kernels, fit and posterior.

An estimator is the infinite-width network its parameters describe, used
as a kernel machine: `fit` stores the training inputs, targets and the
train-train kernels; predictions are the posterior mean (and covariance) of
`ntcore.predict`: `gp_inference` at `t=None` (infinite training time),
`gradient_descent_mse_ensemble` (the infinite ensemble trained by gradient
flow on the MSE for time `t`) otherwise. `kind` selects the kernel:
`"nngp"` (the Bayesian posterior, or training the readout only) or `"ntk"`
(training every layer).
"""

from __future__ import annotations

import collections
from typing import Any, Optional

import numpy as np
from ntcore import predict
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from nt_sklearn import _compute, networks
from nt_sklearn.errors import EstimatorParamError

Pair = collections.namedtuple("Pair", ["nngp", "ntk"])


class NeuralKernelEstimator(BaseEstimator):
  """Base of the NTK/NNGP estimators; see the subclasses.

  Args:
    network: None (a fully-connected network from `depth`, `W_std`,
      `b_std`, `nonlinearity`), a stax triple `(init_fn, apply_fn,
      kernel_fn)`, or a factory returning one (called with those of the
      four hyper-parameters its signature names, and `network_params`).
    depth: hidden layers of the default network (or a factory's `depth`).
    W_std: weight standard deviation.
    b_std: bias standard deviation.
    nonlinearity: stax name of the default network's nonlinearity.
    network_params: further keyword arguments of the factory.
    t: training time of the gradient flow (learning rate 1); None: infinite
      time, the exact kernel regression.
    diag_reg: regularizer added to the train-train kernel's diagonal.
    diag_reg_absolute_scale: `diag_reg` in absolute units (True) or in
      units of the kernel's mean diagonal (False).
    batch_size: 0: kernels in one call; > 0: through `ntcore.batch` in
      `batch_size x batch_size` blocks, for large training sets.
    solver: how the posterior applies `(K + reg)^{-1}` at infinite time
      (`t=None`): None or "dense" (a Cholesky factorization), "cg"
      (preconditioned conjugate gradients, for training sets too large to
      factor), "auto", or `ntcore.predict.CG(...)`; see
      `ntcore.predict.gp_inference`. CG's convergence records are in
      `cg_records_` after fit.
  """

  kind = "ntk"

  def __init__(self, network: Any = None, depth: int = 1, W_std: float = 1.5,
               b_std: float = 0.05, nonlinearity: str = "Relu",
               network_params: Optional[dict] = None, t: Optional[float] = None,
               diag_reg: float = 1e-4, diag_reg_absolute_scale: bool = False,
               batch_size: int = 0, solver: Any = None):
    self.network = network
    self.depth = depth
    self.W_std = W_std
    self.b_std = b_std
    self.nonlinearity = nonlinearity
    self.network_params = network_params
    self.t = t
    self.diag_reg = diag_reg
    self.diag_reg_absolute_scale = diag_reg_absolute_scale
    self.batch_size = batch_size
    self.solver = solver

  # Building -----------------------------------------------------------------

  def kernel_fn(self):
    """The analytic `kernel_fn` of the network the parameters describe."""
    hyper = {k: getattr(self, k) for k in networks.HYPER_PARAMETERS}
    return networks.build(self.network, hyper, self.network_params)

  def _kernels(self, x1, x2, gets) -> Pair:
    fn = self.kernel_fn()
    return Pair(*(_compute.kernel(fn, x1, x2, g, self.batch_size)
                  if g in gets else None for g in Pair._fields))

  def _check_params(self) -> None:
    if self.t is not None and not (np.isscalar(self.t) and self.t >= 0):
      raise EstimatorParamError(
          f"t={self.t!r} must be None (infinite training time) or a number "
          ">= 0.")
    if (isinstance(self.batch_size, bool) or not isinstance(
        self.batch_size, (int, np.integer)) or self.batch_size < 0):
      raise EstimatorParamError(
          f"batch_size={self.batch_size!r} must be an integer >= 0 (0: one "
          "call; k: ntcore.batch blocks of k x k).")
    if self.t is not None and self.solver not in (None, "dense"):
      raise EstimatorParamError(
          f"solver={self.solver!r} solves the infinite-time posterior, but "
          f"t={self.t!r}; pass t=None, or solver=None for finite time.")

  # Fitting and predicting ---------------------------------------------------

  def _fit_targets(self, X, targets: np.ndarray):
    """Stores the training set, its kernels, and clears the posterior."""
    self._check_params()
    self.X_train_ = np.asarray(X)
    self.y_train_ = np.asarray(targets, dtype=float)
    gets = ("nngp", "ntk") if self.kind == "ntk" else ("nngp",)
    self.k_train_train_ = self._kernels(self.X_train_, None, gets)
    self._posterior = self._make_posterior()
    return self

  def __getstate__(self):
    state = dict(self.__dict__)
    state.pop("_posterior", None)  # closures, rebuilt by __setstate__
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    if "k_train_train_" in state:
      self._posterior = self._make_posterior()

  def _make_posterior(self):
    """`ntcore.predict`'s `predict_fn` on the training set.

    Made at fit time (not on first use), so that predicting leaves the
    estimator unchanged.
    """
    reg = dict(diag_reg=self.diag_reg,
               diag_reg_absolute_scale=self.diag_reg_absolute_scale)
    if self.t is None:
      fn = predict.gp_inference(self.k_train_train_, self.y_train_,
                                solver=self.solver, **reg)
      # Factorize (or solve) now, so that a singular kernel raises in fit.
      fn(self.kind, self._kernels(self.X_train_[:1], self.X_train_,
                                  (self.kind,)))
      self.cg_records_ = list(getattr(fn, "cg_records", []))
      return fn
    return predict.gradient_descent_mse_ensemble(
        self._ensemble_kernel_fn, self.X_train_, self.y_train_, **reg)

  def _ensemble_kernel_fn(self, x1, x2=None, get=None, **unused):
    del unused
    if x2 is None and x1 is self.X_train_:
      k = self.k_train_train_
    else:
      k = self._kernels(x1, x2, ("nngp", "ntk"))
    return k if get is None or not isinstance(get, str) else getattr(k, get)

  def _posterior_mean_cov(self, X, cov: bool):
    """Mean `(m, C)` and, if `cov`, covariance `(m, m)` on inputs `X`."""
    check_is_fitted(self, "k_train_train_")
    X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
    if self.t is not None:
      out = self._posterior(self.t, X, self.kind, compute_cov=cov)
    else:
      prior = ("nngp", "ntk") if self.kind == "ntk" and cov else (self.kind,)
      k_td = self._kernels(X, self.X_train_, (self.kind,) + prior)
      k_tt = self._kernels(X, None, prior) if cov else None
      out = self._posterior(self.kind, k_td, k_tt)
    if not cov:
      return np.asarray(out), None
    return np.asarray(out.mean), np.asarray(out.covariance)

  def __sklearn_tags__(self):
    tags = super().__sklearn_tags__()
    tags.non_deterministic = False
    return tags
