"""`predict.max_learning_rate`: NT's value and return type, and that it is
the stability threshold of (momentum) gradient descent on MSE."""

import jax
import numpy as np
import pytest

from ntcore import predict
from ntcore.errors import ShapeError

rng = np.random.default_rng(11)


def psd(n):
  a = rng.normal(size=(n, n))
  return a @ a.T / n + 0.1 * np.eye(n)


def heavy_ball_radius(k, lr, momentum, size):
  """Spectral radius of one step of momentum GD on `1/(2 size) |f - y|^2`."""
  n = k.shape[0]
  step = np.eye(n) * (1 + momentum) - lr / size * k
  companion = np.block([[step, -momentum * np.eye(n)],
                        [np.eye(n), np.zeros((n, n))]])
  return np.abs(np.linalg.eigvals(companion)).max()


@pytest.mark.parametrize("momentum", [0., 0.9])
def test_is_the_stability_threshold(momentum):
  k = psd(6)
  size = 6 * 3  # y_train of shape (6, 3)
  lr = predict.max_learning_rate(k, y_train_size=size, momentum=momentum)
  assert heavy_ball_radius(k, 0.99 * lr, momentum, size) < 1
  assert heavy_ball_radius(k, 1.01 * lr, momentum, size) > 1


def test_value_and_type_follow_nt():
  k = psd(5)
  lr = predict.max_learning_rate(k, momentum=0.5, eps=1e-3)
  lam = np.linalg.eigvalsh(k)[-1]
  assert isinstance(lr, np.float64) and isinstance(lr, float)
  np.testing.assert_allclose(lr, 2 * 1.5 * 5 / (lam + 1e-3), rtol=1e-12)
  lr32 = predict.max_learning_rate(k.astype(np.float32))
  assert isinstance(lr32, np.float32)
  np.testing.assert_allclose(lr32, 2 * 5 / lam, rtol=1e-5)


def test_default_size_is_the_kernels_first_axis_as_a_matrix():
  # An (n, n, C, C) kernel, e.g. an empirical one with trace_axes=(): as a
  # matrix it is (n C, n C), and y_train has n C entries.
  k = psd(4 * 2).reshape(4, 2, 4, 2).transpose(0, 2, 1, 3)
  lam = np.linalg.eigvalsh(k.transpose(0, 2, 1, 3).reshape(8, 8))[-1]
  np.testing.assert_allclose(predict.max_learning_rate(k), 2 * 8 / lam,
                             rtol=1e-12)


def test_zero_kernel_gives_a_finite_rate_through_eps():
  assert predict.max_learning_rate(np.zeros((3, 3)), eps=0.5) == 2 * 3 / 0.5


def test_jits_to_an_array():
  k = psd(4)
  out = jax.jit(predict.max_learning_rate)(k)
  assert isinstance(out, jax.Array)
  np.testing.assert_allclose(out, predict.max_learning_rate(k), rtol=1e-12)


def test_a_kernel_that_is_not_square_raises():
  with pytest.raises(ShapeError, match="interleaved"):
    predict.max_learning_rate(np.ones((3, 4)))
