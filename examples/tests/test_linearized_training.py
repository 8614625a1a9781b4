"""linearized_training.py: a network and its linearization stay close, closer
the wider (linearization paper, Figure 3), at a small size."""

import numpy as np
import pytest


@pytest.mark.slow
def test_rmse_to_the_linearization_shrinks_with_width(example):
  mod = example("linearized_training")
  r = mod.run(widths=(16, 64, 256), n_train=16, n_test=32, steps=100,
              every=20, n_seeds=2, echo=lambda s: None)
  assert r["rmse"].shape == (3, 6) and list(r["t"]) == [0, 20, 40, 60, 80, 100]
  # Same parameters at t = 0: f_lin(p0) = f(p0) up to round-off.
  np.testing.assert_allclose(r["rmse"][:, 0], 0, atol=1e-12)
  final = r["rmse"][:, -1]
  assert np.all(final > 0) and np.all(np.diff(final) < 0)
  # Theory: the gap is O(1 / sqrt(width)), 4x smaller for 16x the width;
  # at least 2x smaller leaves room for the noise of two seeds.
  assert final[-1] < final[0] / 2
  # Both models learned the task the same way: equal test loss at the
  # widest width to within the gap between their outputs.
  assert np.all(np.isfinite(r["loss_nn"])) and r["loss_nn"][-1] < 0.5
  assert abs(r["loss_nn"][-1] - r["loss_lin"][-1]) < 2 * final[-1]


def test_digits_binary_task_is_balanced_and_normalized(example):
  x_train, y_train, x_test, y_test = example(
      "linearized_training").digits_binary(100, 50)
  assert x_train.shape == (100, 64) and x_test.shape == (50, 64)
  np.testing.assert_allclose(np.linalg.norm(x_train, axis=1), 1)
  assert set(np.unique(y_train)) == {-1., 1.} and y_test.shape == (50, 1)
  assert 0.3 < np.mean(y_train > 0) < 0.7
