"""`predict.gradient_descent` on nt-ode's default solver (dopri5).

Each case is checked against something solved by hand: the MSE closed form,
a conservation law of softmax cross-entropy, a damped oscillator for
momentum, and resuming from a returned `ODEState`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntcore import predict
from ntcore.dynamics import ode

# rtol = atol = 1.4e-8 bounds the local error of each step. The flows here
# contract, so the global error stays within a small multiple of the local
# one; 100x leaves room for the dense interpolant between steps.
TOL = 100 * ode.RTOL

N_TRAIN, N_TEST, N_OUT = 5, 3, 2


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(N_TRAIN + N_TEST, 12))
  joint = x @ x.T / x.shape[1]  # a positive-definite kernel on all inputs
  return dict(
      k_train_train=joint[:N_TRAIN, :N_TRAIN],
      k_test_train=joint[N_TRAIN:, :N_TRAIN],
      y_train=rng.normal(size=(N_TRAIN, N_OUT)),
      fx_train_0=rng.normal(size=(N_TRAIN, N_OUT)),
      fx_test_0=rng.normal(size=(N_TEST, N_OUT)))


def mse_closed_form(d, s, normalization):
  """Gradient flow on `0.5 * sum((f - y)**2) / normalization` for time `s`:

  f(s) - y = exp(-K s / N) (f0 - y), and the test outputs integrate
  df_test/ds = -K_st (f - y) / N, giving
  f_test(s) = f_test0 - K_st K^-1 (I - exp(-K s / N)) (f0 - y).
  """
  evals, evecs = np.linalg.eigh(d["k_train_train"])
  decay = np.exp(-np.multiply.outer(s, evals) / normalization)  # (..., n)
  residual = d["fx_train_0"] - d["y_train"]
  in_basis = evecs.T @ residual
  fx_train = d["y_train"] + np.einsum("ij,...j,jk->...ik", evecs, decay,
                                      in_basis)
  gain = (1 - decay) / evals
  fx_test = d["fx_test_0"] - np.einsum("mi,ij,...j,jk->...mk",
                                       d["k_test_train"], evecs, gain, in_basis)
  return fx_train, fx_test


def test_mse_matches_closed_form(data):
  # Mean loss, learning rate 0.5 and a (2, 2) grid of times: checks the loss
  # normalization, the time units and the leading time axes at once.
  lr = 0.5
  loss = lambda fx, y_hat: 0.5 * jnp.mean((fx - y_hat) ** 2)
  predict_fn = predict.gradient_descent(loss, data["k_train_train"],
                                        data["y_train"], learning_rate=lr)
  t = np.array([[0., 0.7], [5., 60.]])
  fx_train, fx_test = predict_fn(t, data["fx_train_0"], data["fx_test_0"],
                                 data["k_test_train"])
  want_train, want_test = mse_closed_form(data, lr * t, N_TRAIN * N_OUT)
  assert fx_train.shape == (2, 2, N_TRAIN, N_OUT)
  assert fx_test.shape == (2, 2, N_TEST, N_OUT)
  np.testing.assert_array_equal(fx_train[0, 0], data["fx_train_0"])
  np.testing.assert_allclose(fx_train, want_train, rtol=TOL, atol=TOL)
  np.testing.assert_allclose(fx_test, want_test, rtol=TOL, atol=TOL)
  # Even at t = 60 the slowest mode (lambda_min lr t / N ~ 0.4) is far from
  # y, so every time compared is on the way, not at the fixed point.
  assert np.abs(fx_train[1, 1] - data["y_train"]).max() > 0.1


def cross_entropy(fx, y_hat):
  return -jnp.mean(jax.nn.log_softmax(fx, axis=-1) * y_hat)


def test_cross_entropy_decreases_and_conserves_logit_sums(data):
  y = jax.nn.one_hot(np.array([0, 1, 1, 0, 1]), N_OUT, dtype=np.float64)
  predict_fn = predict.gradient_descent(
      cross_entropy, data["k_train_train"], y, learning_rate=2.)
  t = np.array([0., 0.5, 2., 8., 32.])
  fx_train, fx_test = predict_fn(t, data["fx_train_0"], data["fx_test_0"],
                                 data["k_test_train"])
  assert np.all(np.isfinite(fx_train)) and np.all(np.isfinite(fx_test))
  losses = np.array([cross_entropy(f, y) for f in fx_train])
  # Gradient flow: dL/dt = -g K g < 0 for a positive-definite K.
  assert np.all(np.diff(losses) < 0), losses
  assert losses[-1] < 0.5 * losses[0]
  # softmax(f) - y sums to 0 over classes, so the gradient does too and
  # every example's (train or test) sum of logits never moves.
  np.testing.assert_allclose(fx_train.sum(-1),
                             np.broadcast_to(data["fx_train_0"].sum(-1),
                                             (5, N_TRAIN)), atol=TOL)
  np.testing.assert_allclose(fx_test.sum(-1),
                             np.broadcast_to(data["fx_test_0"].sum(-1),
                                             (5, N_TEST)), atol=TOL)


def damped_oscillator(k, c, lr, momentum, u0, t):
  """One train output, one test output, 0.5 (f - y)^2, starting at rest.

  With s = sqrt(lr) t and gamma = (1 - momentum) / sqrt(lr), u = f - y obeys
  u'' + gamma u' + k u = 0; for k > gamma^2 / 4 and u'(0) = 0,
  u = u0 e^{-gamma s / 2} (cos ws + gamma / (2w) sin ws), w^2 = k - gamma^2/4,
  and q = u' = -u0 e^{-gamma s / 2} (k / w) sin ws. The test output follows
  f_test - f_test0 = (c / k)(f - f0) (its difference has zero velocity).
  """
  s = np.sqrt(lr) * t
  gamma = (1 - momentum) / np.sqrt(lr)
  w = np.sqrt(k - gamma ** 2 / 4)
  envelope = u0 * np.exp(-gamma * s / 2)
  u = envelope * (np.cos(w * s) + gamma / (2 * w) * np.sin(w * s))
  q = -envelope * k / w * np.sin(w * s)
  return u, q, c / k * (u - u0), c / k * q


def test_momentum_matches_oscillator_and_resumes_from_state():
  k, c, lr, momentum = 2., 0.7, 0.25, 0.5
  y, f0, f_test0 = 0.3, 1.3, -0.4
  loss = lambda fx, y_hat: 0.5 * jnp.sum((fx - y_hat) ** 2)
  predict_fn = predict.gradient_descent(
      loss, np.array([[k]]), np.array([[y]]), learning_rate=lr,
      momentum=momentum)
  state_0 = predict.ODEState(np.array([[f0]]), np.array([[f_test0]]))
  t1, t2 = 1.5, 7.
  direct = predict_fn(np.array([t1, t2]), state_0, None, np.array([[c]]))
  assert isinstance(direct, predict.ODEState)
  u, q, df_test, q_test = damped_oscillator(k, c, lr, momentum, f0 - y,
                                            np.array([t1, t2]))
  np.testing.assert_allclose(direct.fx_train[:, 0, 0], y + u, atol=TOL)
  np.testing.assert_allclose(direct.qx_train[:, 0, 0], q, atol=TOL)
  np.testing.assert_allclose(direct.fx_test[:, 0, 0], f_test0 + df_test,
                             atol=TOL)
  np.testing.assert_allclose(direct.qx_test[:, 0, 0], q_test, atol=TOL)
  assert abs(q[0]) > 0.1  # the state at t1 really carries momentum
  # Resume from the state returned at t1 and run t2 - t1 more.
  at_t1 = jax.tree.map(lambda x: x[0], direct)
  resumed = predict_fn(np.array([0., t2 - t1]), at_t1, None, np.array([[c]]))
  for got, want in zip(jax.tree.leaves(resumed), jax.tree.leaves(direct)):
    np.testing.assert_allclose(got[1], want[1], atol=TOL)
  for got, want in zip(jax.tree.leaves(resumed), jax.tree.leaves(at_t1)):
    np.testing.assert_array_equal(got[0], want)
