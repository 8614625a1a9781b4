"""`StaxKernel` inside scikit-learn's kernel machines, with its gradients."""

import numpy as np
import pytest
from ntcore import predict, stax
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.svm import SVC

from nt_sklearn import EstimatorParamError, StaxKernel, fully_connected

TOL = dict(rtol=1e-9, atol=1e-12)


def data(n=12, d=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  return x, np.sin(x[:, 0]) + 0.1 * rng.normal(size=n)


def erf_net(W_std, b_std, depth):
  layers = [stax.Dense(1, W_std, b_std), stax.Erf()] * depth
  return stax.serial(*layers, stax.Dense(1, W_std, b_std))


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_values_and_diagonal_are_the_network_kernel(get):
  x, _ = data()
  kern = StaxKernel(depth=2, W_std=1.3, b_std=0.2, get=get)
  ref = np.asarray(fully_connected(2, 1.3, 0.2)[2](x, None, get))
  np.testing.assert_allclose(kern(x), ref, **TOL)
  np.testing.assert_allclose(kern.diag(x), np.diag(ref), **TOL)
  # x[:4] against x pairs each input with itself by the cross formula,
  # whose ReLU angle is exact only to sqrt(eps) ~ 1.5e-8.
  np.testing.assert_allclose(kern(x[:4], x), ref[:4], rtol=3e-8)
  assert not kern.is_stationary()


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_gradient_matches_finite_differences_in_theta(get):
  """dK/dtheta against central differences of theta = log values.

  Erf (smooth everywhere); float64 with h = 1e-5: error ~h^2 + eps/h, under
  1e-9 relative; a wrong chain rule (d/dv instead of v d/dv) is off by O(1).
  """
  x, _ = data(n=6)
  kern = StaxKernel(network=erf_net, depth=2, get=get, W_std=1.4, b_std=0.3)
  k, grad = kern(x, eval_gradient=True)
  assert grad.shape == (6, 6, 2)
  h = 1e-5
  for i in range(2):
    up, down = kern.theta.copy(), kern.theta.copy()
    up[i] += h
    down[i] -= h
    fd = (kern.clone_with_theta(up)(x) - kern.clone_with_theta(down)(x)) / (
        2 * h)
    np.testing.assert_allclose(grad[..., i], fd, rtol=1e-6, atol=1e-9)
  fixed = StaxKernel(network=erf_net, depth=2, get=get, W_std=1.4, b_std=0.3,
                     b_std_bounds="fixed")
  k2, grad2 = fixed(x, eval_gradient=True)
  np.testing.assert_allclose(k2, k, **TOL)
  np.testing.assert_allclose(grad2[..., 0], grad[..., 0], **TOL)
  assert grad2.shape == (6, 6, 1)


def test_gaussian_process_likelihood_is_predicts_and_fit_improves_it():
  x, y = data(n=16)
  noise = 1e-2
  kern = StaxKernel(depth=1, W_std=1., b_std=0.5)
  fixed = GaussianProcessRegressor(kern, alpha=noise, optimizer=None).fit(x, y)
  ours = predict.log_marginal_likelihood(kern(x), y[:, None], noise, True)
  np.testing.assert_allclose(fixed.log_marginal_likelihood_value_, ours,
                             rtol=1e-9)
  fitted = GaussianProcessRegressor(kern, alpha=noise).fit(x, y)
  assert (fitted.log_marginal_likelihood_value_ >
          fixed.log_marginal_likelihood_value_ + 1e-3)
  # Same optimum as the core's fit over the same parameters.
  fit = predict.fit_marginal_likelihood(
      lambda W_std, b_std: fully_connected(1, W_std, b_std), x, y[:, None],
      {"W_std": 1., "b_std": 0.5}, diag_reg=noise,
      bounds={"W_std": (1e-2, 1e2), "b_std": (1e-4, 1e2)})
  np.testing.assert_allclose(fitted.log_marginal_likelihood_value_,
                             fit.log_marginal_likelihood, rtol=1e-4)


def test_kernel_ridge_and_svc_take_it():
  x, y = data(n=20)
  kern = StaxKernel(get="ntk")
  alpha = 1e-3
  k = kern(x)
  ridge = KernelRidge(kernel=kern, alpha=alpha).fit(x[:15], y[:15])
  ref = k[15:, :15] @ np.linalg.solve(k[:15, :15] + alpha * np.eye(15),
                                      y[:15])
  np.testing.assert_allclose(ridge.predict(x[15:]), ref, rtol=1e-8)
  labels = (y > 0).astype(int)
  svc = SVC(kernel=kern).fit(x, labels)
  precomputed = SVC(kernel="precomputed").fit(k, labels)
  np.testing.assert_array_equal(svc.predict(x), precomputed.predict(k))


def test_fixed_triple_and_bad_get_raise_naming_the_fix():
  x, _ = data()
  with pytest.raises(EstimatorParamError, match="needs a network factory"):
    StaxKernel(network=fully_connected())(x)
  with pytest.raises(EstimatorParamError, match="'nngp' or 'ntk'"):
    StaxKernel(get="ntkgp")(x)
