"""The estimators against `ntcore.predict` on the same kernels, and their
scikit-learn plumbing (search, pipelines, clone, pickle, errors)."""

import pickle

import numpy as np
import pytest
from ntcore import predict, stax
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nt_sklearn import (EstimatorParamError, NNGPClassifier, NNGPRegressor,
                        NTKClassifier, NTKRegressor, TargetError, _compute,
                        fully_connected)

TOL = dict(rtol=1e-9, atol=1e-12)


def problem(n=24, m=9, d=4, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n + m, d))
  y = np.sin(x[:, 0]) + x[:, 1] ** 2 / 4
  return x[:n], y[:n], x[n:], y[n:]


def reference(kernel_fn, x, y, x_test, get, diag_reg=1e-4):
  """`gp_inference` on the kernels of `kernel_fn`, computed directly."""
  k_dd = kernel_fn(x, None, ("nngp", "ntk"))
  k_td = kernel_fn(x_test, x, ("nngp", "ntk"))
  k_tt = kernel_fn(x_test, None, ("nngp", "ntk"))
  return predict.gp_inference(k_dd, y, diag_reg=diag_reg)(get, k_td, k_tt)


@pytest.mark.parametrize("cls, get", [(NTKRegressor, "ntk"),
                                      (NNGPRegressor, "nngp")])
def test_regressor_is_gp_inference_on_the_same_kernel(cls, get):
  x, y, x_test, _ = problem()
  est = cls(depth=2, W_std=1.3, b_std=0.2).fit(x, y)
  ref = reference(fully_connected(2, 1.3, 0.2)[2], x, y[:, None], x_test, get)
  mean, cov = est.predict(x_test, return_cov=True)
  np.testing.assert_allclose(mean, ref.mean[:, 0], **TOL)
  np.testing.assert_allclose(cov, ref.covariance, **TOL)
  _, std = est.predict(x_test, return_std=True)
  np.testing.assert_allclose(std, np.sqrt(np.diag(ref.covariance)), **TOL)
  assert mean.shape == std.shape == (len(x_test),)


@pytest.mark.parametrize("cls", [NTKRegressor, NNGPClassifier])
def test_cg_solver_gives_the_dense_posterior(cls):
  x, y, x_test, _ = problem(n=60)
  target = y if cls is NTKRegressor else (y > np.median(y)).astype(int)
  dense = cls(depth=2, diag_reg=1e-3).fit(x, target)
  cg = cls(depth=2, diag_reg=1e-3, solver="cg").fit(x, target)
  assert not dense.cg_records_
  assert cg.cg_records_ and cg.cg_records_[0].iterations >= 1
  if cls is NTKRegressor:
    m_dense, s_dense = dense.predict(x_test, return_std=True)
    m_cg, s_cg = cg.predict(x_test, return_std=True)
    np.testing.assert_allclose(s_cg, s_dense, rtol=1e-6)
  else:
    m_dense = dense.decision_function(x_test)
    m_cg = cg.decision_function(x_test)
  np.testing.assert_allclose(m_cg, m_dense, rtol=1e-6,
                             atol=1e-6 * np.abs(m_dense).max())


def test_two_dimensional_targets_share_the_kernel():
  x, y, x_test, _ = problem()
  y2 = np.stack([y, -2 * y + 1], axis=1)
  est = NTKRegressor().fit(x, y2)
  mean, std = est.predict(x_test, return_std=True)
  assert mean.shape == std.shape == (len(x_test), 2)
  np.testing.assert_allclose(mean[:, 1], -2 * mean[:, 0] + est.fit(
      x, np.ones_like(y)).predict(x_test), **TOL)
  np.testing.assert_allclose(std[:, 0], std[:, 1], **TOL)


def test_finite_time_is_the_trained_ensemble():
  x, y, x_test, _ = problem()
  est = NTKRegressor(t=3., diag_reg=0.).fit(x, y)
  kernel_fn = fully_connected()[2]
  ref = predict.gradient_descent_mse_ensemble(kernel_fn, x, y[:, None])(
      3., x_test, "ntk", compute_cov=True)
  mean, cov = est.predict(x_test, return_cov=True)
  np.testing.assert_allclose(mean, ref.mean[:, 0], **TOL)
  np.testing.assert_allclose(cov, ref.covariance, **TOL)
  # and it has not converged: t=None differs
  assert not np.allclose(mean, NTKRegressor(diag_reg=0.).fit(x, y).predict(
      x_test), rtol=1e-3)


@pytest.mark.parametrize("cls, get", [(NTKClassifier, "ntk"),
                                      (NNGPClassifier, "nngp")])
def test_classifier_is_one_hot_regression(cls, get):
  x, y, x_test, _ = problem()
  labels = np.array(["a", "b", "c"])[np.digitize(y, [0.2, 0.8])]
  est = cls().fit(x, labels)
  np.testing.assert_array_equal(est.classes_, ["a", "b", "c"])
  targets = np.eye(3)[np.searchsorted(est.classes_, labels)] - 1 / 3
  ref = reference(fully_connected()[2], x, targets, x_test, get).mean
  np.testing.assert_allclose(est.decision_function(x_test), ref, **TOL)
  np.testing.assert_array_equal(est.predict(x_test),
                                est.classes_[np.argmax(ref, 1)])
  binary = cls().fit(x, labels == "a")
  scores = binary.decision_function(x_test)
  assert scores.shape == (len(x_test),)
  np.testing.assert_array_equal(binary.predict(x_test), scores > 0)


def test_network_as_stax_triple_or_factory_with_network_params():
  x, y, x_test, _ = problem()
  triple = stax.serial(stax.Dense(1, 1.2, 0.1), stax.Erf(),
                       stax.Dense(1, 1.2, 0.1))
  got = NNGPRegressor(network=triple).fit(x, y).predict(x_test)
  ref = reference(triple[2], x, y[:, None], x_test, "nngp").mean[:, 0]
  np.testing.assert_allclose(got, ref, **TOL)

  def factory(depth, W_std, width):  # b_std not named: not passed
    layers = [stax.Dense(width, W_std, 0.3), stax.Erf()] * depth
    return stax.serial(*layers, stax.Dense(1, W_std, 0.3))

  est = NNGPRegressor(network=factory, depth=2, W_std=1.1,
                      network_params={"width": 3})
  got = est.fit(x, y).predict(x_test)
  ref = reference(factory(2, 1.1, 1)[2], x, y[:, None], x_test,
                  "nngp").mean[:, 0]
  np.testing.assert_allclose(got, ref, **TOL)


def test_batch_size_goes_through_ntcore_batch_with_the_same_result():
  x, y, x_test, _ = problem(n=21)
  whole = NTKRegressor().fit(x, y).predict(x_test, return_std=True)
  blocks = NTKRegressor(batch_size=8).fit(x, y).predict(x_test,
                                                         return_std=True)
  np.testing.assert_allclose(blocks, whole, **TOL)


def test_padding_rows_is_exact():
  x, _, x_test, _ = problem(n=5, m=3)
  kernel_fn = fully_connected(2, 1.4, 0.1)[2]
  for get in ("nngp", "ntk"):
    np.testing.assert_allclose(_compute.kernel(kernel_fn, x, None, get),
                               kernel_fn(x, None, get), rtol=1e-13)
    np.testing.assert_allclose(_compute.kernel(kernel_fn, x_test, x, get),
                               kernel_fn(x_test, x, get), rtol=1e-13)
  assert _compute.padded_rows(5) == 8 and _compute.padded_rows(9) == 16


def test_grid_search_pipeline_cross_val_and_clone():
  x, y, _, _ = problem(n=30)
  labels = (y > np.median(y)).astype(int)
  pipe = make_pipeline(StandardScaler(), NTKClassifier())
  grid = {"ntkclassifier__depth": [1, 2],
          "ntkclassifier__W_std": [0.8, 1.6]}
  search = GridSearchCV(pipe, grid, cv=3).fit(x, labels)
  assert search.best_params_["ntkclassifier__depth"] in (1, 2)
  best = search.cv_results_["mean_test_score"][search.best_index_]
  again = cross_val_score(clone(pipe).set_params(**search.best_params_), x,
                          labels, cv=3).mean()
  assert again == pytest.approx(best)
  copy = clone(NTKClassifier(W_std=0.8, depth=3))
  assert copy.get_params()["W_std"] == 0.8 and copy.depth == 3


def test_pickled_estimator_predicts_the_same():
  x, y, x_test, _ = problem()
  est = NTKRegressor(depth=2).fit(x, y)
  copy = pickle.loads(pickle.dumps(est))
  np.testing.assert_allclose(copy.predict(x_test, return_std=True),
                             est.predict(x_test, return_std=True), **TOL)


@pytest.mark.parametrize("est, match", [
    (NTKRegressor(network="relu"), "neither a stax network nor a factory"),
    (NTKRegressor(depth=-1), "depth=-1 must be an integer >= 0"),
    (NTKRegressor(depth=1.5), "depth=1.5 must be an integer"),
    (NTKRegressor(t=-1.), "t=-1.0 must be None"),
    (NTKRegressor(batch_size=-4), "batch_size=-4 must be an integer >= 0"),
    (NTKRegressor(t=1., solver="cg"), "solves the infinite-time posterior"),
    (NTKRegressor(network=lambda: 3), "returned int, not an"),
])
def test_bad_parameters_raise_naming_the_fix(est, match):
  x, y, _, _ = problem()
  with pytest.raises(EstimatorParamError, match=match):
    est.fit(x, y)


def test_one_class_and_both_outputs_are_errors():
  x, y, x_test, _ = problem()
  with pytest.raises(TargetError, match="at least 2 classes"):
    NTKClassifier().fit(x, np.zeros(len(x)))
  with pytest.raises(TargetError, match="not both"):
    NTKRegressor().fit(x, y).predict(x_test, return_std=True,
                                     return_cov=True)
