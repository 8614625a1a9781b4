"""predictive_distribution.py: a finite ensemble's outputs between two
training points follow the NTK-GP (linearization paper, Figure 2).

With M members the ensemble mean has standard error std / sqrt(M) and the
sample variance a relative standard error sqrt(2 / (M - 1)); tolerances are
4 of them (the errors at nearby inputs are correlated, so their root mean
square behaves like one Gaussian |z|).
"""

import numpy as np
import pytest

M = 64


@pytest.fixture(scope="module")
def result(example):
  return example("predictive_distribution").run(
      width=128, n_members=M, steps=100, echo=lambda s: None)


@pytest.mark.slow
def test_ensemble_follows_the_ntk_gp_at_the_same_time(result):
  mean, std = result["ensemble"]
  mean_ntk, std_ntk = result["ntk_t"]
  assert result["outputs"].shape == (M, len(result["alpha"]))
  gap = np.sqrt(np.mean((mean - mean_ntk) ** 2))
  assert gap <= 4 * np.sqrt(np.mean(std_ntk ** 2 / M))
  ratio = np.mean(std ** 2) / np.mean(std_ntk ** 2)
  assert abs(ratio - 1) <= 4 * np.sqrt(2 / (M - 1))


@pytest.mark.slow
def test_infinite_time_posteriors_interpolate_the_training_points(
    result, example):
  x_train, y_train, alpha, _ = example("predictive_distribution").data()
  del x_train
  at = {a: int(np.argmin(np.abs(result["alpha"] - a))) for a in (0., 1.)}
  np.testing.assert_allclose(alpha, result["alpha"])
  for key in ("ntk_inf", "nngp_inf"):
    mean, std = result[key]
    # x(1) = x_train[0], x(0) = x_train[1]; diag_reg 1e-6 leaves ~1e-4.
    np.testing.assert_allclose(mean[at[1.]], y_train[0, 0], atol=1e-3)
    np.testing.assert_allclose(mean[at[0.]], y_train[1, 0], atol=1e-3)
    assert std[at[0.]] < 0.05 * std.max() and std[at[1.]] < 0.05 * std.max()
  # At a finite time the NTK-GP has not yet collapsed onto the data.
  assert result["ntk_t"][1][at[0.]] > result["ntk_inf"][1][at[0.]]
