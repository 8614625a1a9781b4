"""NTK and NNGP regressors and classifiers with scikit-learn's interface.

The regressors follow `GaussianProcessRegressor`: `predict(X,
return_std=False, return_cov=False)`. The classifiers regress the centred
one-hot targets `onehot(y) - 1/C` (as the NT papers do) and predict the
class of the largest output; `decision_function` is that output (for two
classes, output 1 minus output 0).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data

from nt_sklearn._base import NeuralKernelEstimator
from nt_sklearn.errors import TargetError

__all__ = ["NNGPClassifier", "NNGPRegressor", "NTKClassifier",
           "NTKRegressor"]


class _Regressor(RegressorMixin, NeuralKernelEstimator):
  """Kernel regression with the network's NTK or NNGP (see the subclasses)."""

  def fit(self, X, y):
    """Stores the training set and its kernels.

    Args:
      X: `(n, d)` inputs.
      y: `(n,)` or `(n, C)` targets; columns share the kernel.

    Returns:
      self.
    """
    X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                         dtype=[np.float64, np.float32])
    self._y_1d = y.ndim == 1
    return self._fit_targets(X, y.reshape(len(y), -1))

  def predict(self, X, return_std: bool = False, return_cov: bool = False):
    """The posterior mean, and its standard deviation or covariance.

    Args:
      X: `(m, d)` inputs.
      return_std: also return the standard deviation `(m,)` (`(m, C)` for
        2-D targets, the same for every column).
      return_cov: also return the covariance `(m, m)` (`(m, m, C)` for 2-D
        targets).

    Returns:
      `mean` (`(m,)` or `(m, C)`, as `y` was), or `(mean, std)` or
      `(mean, cov)`.
    """
    if return_std and return_cov:
      raise TargetError(
          "predict: pass return_std=True or return_cov=True, not both (the "
          "standard deviation is the square root of the covariance's "
          "diagonal).")
    mean, cov = self._posterior_mean_cov(X, return_std or return_cov)
    c = mean.shape[1]
    mean = mean[:, 0] if self._y_1d else mean
    if return_std:
      std = np.sqrt(np.clip(np.diagonal(cov), 0, None))
      return mean, std if self._y_1d else np.repeat(std[:, None], c, 1)
    if return_cov:
      return mean, cov if self._y_1d else np.repeat(cov[..., None], c, 2)
    return mean

  def __sklearn_tags__(self):
    tags = super().__sklearn_tags__()
    tags.target_tags.multi_output = True
    return tags


class NTKRegressor(_Regressor):
  """Regression with the NTK: the infinite ensemble of the network trained
  on the MSE by gradient flow for time `t` (None: to convergence).

  The mean at `t=None` is `Θ_* (Θ + diag_reg I)^{-1} y`; the covariance is
  the ensemble's (linearization paper, eq. 16), whose prior is the NNGP.
  Parameters: see `NeuralKernelEstimator`.
  """

  kind = "ntk"


class NNGPRegressor(_Regressor):
  """Regression with the NNGP: the exact Bayesian posterior of the
  infinitely wide network (at `t=None`), `K_* (K + diag_reg I)^{-1} y` with
  covariance `K_** - K_* (K + diag_reg I)^{-1} K_*^T`; at finite `t`, the
  network whose readout layer alone is trained for time `t`.

  Parameters: see `NeuralKernelEstimator`.
  """

  kind = "nngp"


class _Classifier(ClassifierMixin, NeuralKernelEstimator):
  """One-hot regression with the NTK or NNGP (see the subclasses)."""

  def fit(self, X, y):
    """Stores the training set, its kernels and the centred one-hot targets.

    Args:
      X: `(n, d)` inputs.
      y: `(n,)` class labels, at least two distinct.

    Returns:
      self.

    Raises:
      TargetError: if `y` holds fewer than two classes.
    """
    X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    self.classes_, labels = np.unique(y, return_inverse=True)
    c = len(self.classes_)
    if c < 2:
      raise TargetError(
          f"{type(self).__name__} needs at least 2 classes in y, got 1 class "
          f"({self.classes_.tolist()[0]!r}); a single class needs no "
          "classifier.")
    return self._fit_targets(X, np.eye(c)[labels] - 1. / c)

  def decision_function(self, X):
    """The network's outputs: `(m, C)`, or `(m,)` (class 1 minus 0) for 2."""
    mean, _ = self._posterior_mean_cov(X, cov=False)
    return mean[:, 1] - mean[:, 0] if mean.shape[1] == 2 else mean

  def predict(self, X):
    """The class of the largest output, `(m,)`."""
    mean, _ = self._posterior_mean_cov(X, cov=False)
    return self.classes_[np.argmax(mean, axis=1)]


class NTKClassifier(_Classifier):
  """Classification by the NTK regression of centred one-hot targets: the
  infinite ensemble trained on the MSE for time `t` (None: to convergence).

  Parameters: see `NeuralKernelEstimator`.
  """

  kind = "ntk"


class NNGPClassifier(_Classifier):
  """Classification by the NNGP posterior mean of centred one-hot targets.

  Parameters: see `NeuralKernelEstimator`.
  """

  kind = "nngp"
