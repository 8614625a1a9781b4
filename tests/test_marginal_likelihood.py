"""`predict.log_marginal_likelihood` and `fit_marginal_likelihood`.

References are independent of the library: SciPy's multivariate normal
density, central finite differences, and the Fisher information of a GP.
"""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ntcore import models, predict, stax
from ntcore.errors import PredictArgumentError, SingularKernelError

KernelLike = collections.namedtuple("KernelLike", ["nngp", "ntk"])


def data(n=7, d=3, c=2, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, d)), rng.normal(size=(n, c))


def scipy_lml(k, y, noise):
  """Sum over columns of the Gaussian log density, from SciPy."""
  cov = np.asarray(k) + noise * np.eye(len(k))
  return sum(stats.multivariate_normal(np.zeros(len(k)), cov).logpdf(y[:, c])
             for c in range(y.shape[1]))


def network(W_std, b_std, depth=2):
  return models.FullyConnected(depth, W_std, b_std)


def erf_network(W_std, b_std):
  return stax.serial(stax.Dense(1, W_std, b_std), stax.Erf(),
                     stax.Dense(1, W_std, b_std), stax.Erf(),
                     stax.Dense(1, W_std, b_std))


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_matches_scipy_density_for_nngp_and_ntk_gp(get):
  x, y = data()
  k = network(1.3, 0.2)[2](x, None, ("nngp", "ntk"))
  got = predict.log_marginal_likelihood(k, y, 0.05, True, get=get)
  np.testing.assert_allclose(got, scipy_lml(getattr(k, get), y, 0.05),
                             rtol=1e-12)


def test_relative_diag_reg_is_in_units_of_the_mean_diagonal():
  x, y = data()
  k = np.asarray(network(1.3, 0.2)[2](x, None, "nngp"))
  got = predict.log_marginal_likelihood(k, y, 0.1)
  np.testing.assert_allclose(got, scipy_lml(k, y, 0.1 * np.trace(k) / len(k)),
                             rtol=1e-12)


def test_columns_are_independent_gps_with_one_kernel():
  x, y = data(c=3)
  k = network(1.3, 0.2)[2](x, None, "nngp")
  whole = predict.log_marginal_likelihood(k, y, 0.01, True)
  parts = sum(predict.log_marginal_likelihood(k, y[:, c:c + 1], 0.01, True)
              for c in range(3))
  np.testing.assert_allclose(whole, parts, rtol=1e-12)
  # Targets (n, C) with trace_axes=() pair with the kernel (n, n, C, C) of
  # K ⊗ I: the same density.
  k_full = jnp.einsum("ij,ab->iajb", k, jnp.eye(3)).transpose(0, 2, 1, 3)
  np.testing.assert_allclose(
      predict.log_marginal_likelihood(k_full, y, 0.01, True, trace_axes=()),
      whole, rtol=1e-12)


def finite_difference(f, values, i, h=1e-5):
  up, down = list(values), list(values)
  up[i] += h
  down[i] -= h
  return (f(*up) - f(*down)) / (2 * h)


@pytest.mark.parametrize("get, absolute", [("nngp", True), ("ntk", False)])
def test_gradient_through_kernel_fn_matches_finite_differences(get, absolute):
  """d/d(W_std, b_std, diag_reg), the network built inside the function.

  Central differences with h = 1e-5 in float64: truncation error ~h^2 f''' ~
  1e-10 and round-off ~eps |f| / h ~ 1e-10, so rtol 1e-6 has a wide margin
  while a wrong derivative (a missing term) is off by O(1). Erf, not ReLU:
  the ReLU NTK's diagonal carries sqrt(eps)-level noise in W_std (its angle
  is not always exactly 0 there), which central differences amplify by 1/h.
  """
  x, y = data()

  def lml(w, b, reg):
    kernel_fn = erf_network(w, b)[2]
    return predict.kernel_log_marginal_likelihood(
        kernel_fn, x, y, get, diag_reg=reg, diag_reg_absolute_scale=absolute)

  values = (1.4, 0.3, 0.05)
  grads = jax.jit(jax.grad(lml, argnums=(0, 1, 2)))(*values)
  for i, g in enumerate(grads):
    np.testing.assert_allclose(g, finite_difference(jax.jit(lml), values, i),
                               rtol=1e-6)


def test_float32_kernel_gives_float32_value_within_its_round_off():
  """The float32 result against float64 on the same (rounded) kernel.

  Cholesky's backward error is `|dK| <= c n eps |K|` (Higham, Thm 10.3), so
  the quadratic term moves by at most `cond(K_r) n eps` times itself and
  `log|K_r|` by `tr(K_r^{-1} dK) <= n cond(K_r) n eps`; the bound below is
  their sum with c = 2.
  """
  x, y = data(n=20, c=2)
  k64 = np.asarray(network(1.5, 0.1, depth=3)[2](x, None, "nngp"))
  k32 = k64.astype(np.float32)
  got = predict.log_marginal_likelihood(k32, y.astype(np.float32), 1e-4)
  assert got.dtype == jnp.float32
  ref = predict.log_marginal_likelihood(k32.astype(np.float64), y, 1e-4)
  kr = k32.astype(np.float64) + 1e-4 * np.trace(k64) / 20 * np.eye(20)
  cond, n, eps = np.linalg.cond(kr), 20, np.finfo(np.float32).eps
  quad = float(np.sum(y * np.linalg.solve(kr, y)))
  bound = 2 * n * eps * cond * (quad / 2 + y.shape[1] * n / 2)
  assert abs(float(got) - float(ref)) <= bound
  assert abs(float(got) - float(ref)) > 0  # really computed in float32

  def lml32(reg):
    return predict.log_marginal_likelihood(jnp.asarray(k32),
                                           y.astype(np.float32), reg)

  assert np.isfinite(jax.grad(lml32)(jnp.float32(1e-4)))


def test_kernel_objects_pick_get_and_namedtuples_work():
  x, y = data()
  k = network(1.3, 0.2)[2](x, None, ("nngp", "ntk"))
  pair = KernelLike(np.asarray(k.nngp), np.asarray(k.ntk))
  for get in ("nngp", "ntk"):
    np.testing.assert_allclose(
        predict.log_marginal_likelihood(pair, y, 0.1, get=get),
        predict.log_marginal_likelihood(getattr(k, get), y, 0.1), rtol=1e-12)


def test_singular_kernel_raises_naming_diag_reg():
  x, y = data()
  x[1] = x[0]  # a repeated input: the NNGP is singular
  k = network(1.3, 0.2)[2](x, None, "nngp")
  with pytest.raises(SingularKernelError, match="diag_reg"):
    predict.log_marginal_likelihood(k, y)
  assert np.isfinite(predict.log_marginal_likelihood(k, y, 1e-3))


@pytest.mark.parametrize("kwargs, match", [
    (dict(diag_reg=-1.), "diag_reg=-1.0 is out of range"),
    (dict(get="ntkgp"), "'ntkgp' is not available"),
])
def test_bad_arguments_name_the_valid_values(kwargs, match):
  x, y = data()
  k = network(1.3, 0.2)[2](x, None, "nngp")
  with pytest.raises(PredictArgumentError, match=match):
    predict.log_marginal_likelihood(k, y, **kwargs)


@pytest.mark.parametrize("init, bounds, match", [
    ({}, None, "init is empty"),
    ({"W_std": 0.}, None, "must be a finite number > 0"),
    ({"W_std": 1.}, {"b_std": (0.1, 1.)}, "not fitted"),
    ({"W_std": 1.}, {"W_std": (1., 0.1)}, "0 < low < high"),
])
def test_fit_rejects_bad_init_and_bounds(init, bounds, match):
  x, y = data()
  with pytest.raises(PredictArgumentError, match=match):
    predict.fit_marginal_likelihood(network, x, y, init, bounds=bounds)


def test_fit_improves_the_likelihood_and_records_the_path():
  x, y = data(n=10)
  fit = predict.fit_marginal_likelihood(
      network, x, y, {"W_std": 1., "b_std": 0.5, "diag_reg": 0.1},
      bounds={"W_std": (0.2, 5.)})
  assert fit.result.success, fit.result.message
  first_params, first_lml = fit.history[0]
  assert first_params == pytest.approx(
      {"W_std": 1., "b_std": 0.5, "diag_reg": 0.1}, rel=1e-12)
  assert fit.log_marginal_likelihood > first_lml
  assert 0.2 <= fit.params["W_std"] <= 5.
  values = [v for _, v in fit.history]
  assert values[-1] == pytest.approx(fit.log_marginal_likelihood, rel=1e-9)
  again = predict.kernel_log_marginal_likelihood(
      network(fit.params["W_std"], fit.params["b_std"])[2], x, y,
      diag_reg=fit.params["diag_reg"], diag_reg_absolute_scale=True)
  np.testing.assert_allclose(again, fit.log_marginal_likelihood, rtol=1e-9)


def test_fit_recovers_the_hyper_parameters_data_were_drawn_with():
  """Targets drawn from the NNGP of a known network; the fit finds it.

  Derivation of the tolerance: the C columns are independent draws from
  N(0, K(theta) + s I), theta = (log W_std, log b_std). The maximum
  likelihood estimate is asymptotically normal (in C, n fixed) with
  covariance I(theta)^{-1}, where the Fisher information of a zero-mean
  Gaussian is I_ij = C/2 tr(K_r^{-1} dK_r/dtheta_i K_r^{-1} dK_r/dtheta_j)
  (Rasmussen & Williams 2006, eq. 5.9's second derivative in expectation).
  The standard error of each log-parameter is sqrt((I^{-1})_ii), computed
  here at the true values with jax.jacfwd; the estimate must lie within 4
  of them (a false failure has probability ~6e-5 per parameter).
  """
  n, c, noise = 30, 40, 0.01
  rng = np.random.default_rng(1)
  x = rng.normal(size=(n, 4))
  true = np.log([1.6, 0.4])

  def k_of(theta):
    w, b = jnp.exp(theta)
    k = network(w, b, depth=1)[2](x, None, "nngp")
    return k + noise * jnp.eye(n)

  k_true = np.asarray(k_of(jnp.asarray(true)))
  y = np.linalg.cholesky(k_true) @ rng.normal(size=(n, c))
  fit = predict.fit_marginal_likelihood(
      lambda W_std, b_std: network(W_std, b_std, depth=1), x, y,
      {"W_std": 1., "b_std": 1.}, diag_reg=noise)
  assert fit.result.success, fit.result.message
  dk = np.asarray(jax.jacfwd(k_of)(jnp.asarray(true)))  # (n, n, 2)
  k_inv = np.linalg.inv(k_true)
  a = [k_inv @ dk[..., i] for i in range(2)]
  fisher = c / 2 * np.array([[np.trace(ai @ aj) for aj in a] for ai in a])
  se = np.sqrt(np.diag(np.linalg.inv(fisher)))
  got = np.log([fit.params["W_std"], fit.params["b_std"]])
  assert np.all(np.abs(got - true) <= 4 * se), (np.exp(got), se)
  assert np.all(se < 0.2)  # the test has power: the start is > 5 se away
  assert np.all(np.abs(np.log([1., 1.]) - true) > 2 * se)


def test_stax_network_with_traced_hyper_parameters_is_differentiable():
  """A stax network built inside `jax.grad` sees the traced `W_std`."""
  x, y = data()

  def lml(w):
    kernel_fn = stax.serial(stax.Dense(1, W_std=w, b_std=0.1), stax.Erf(),
                            stax.Dense(1, W_std=w))[2]
    return predict.kernel_log_marginal_likelihood(kernel_fn, x, y,
                                                  diag_reg=0.01)

  np.testing.assert_allclose(jax.grad(lml)(1.2),
                             finite_difference(lml, (1.2,), 0), rtol=1e-6)
