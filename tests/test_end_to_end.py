"""End to end, through the real installed plugins: the README example and the demo."""

import numpy as np
from click.testing import CliRunner

from ntcore import demo, stax
from ntcore.cli import main


def erf_network_kernels(x):
  """NNGP and NTK of the demo network, by the recursions written out in numpy.

  Dense: K' = W^2 K + b^2, T' = K' + W^2 T. Erf: K' = (2/pi) arcsin(2c / r),
  T' = T (4/pi) / sqrt(r^2 - 4c^2), r^2 = (1 + 2 q1)(1 + 2 q2).
  """
  w2, b2 = 1.5 ** 2, 0.05 ** 2
  k = w2 * x @ x.T + b2
  t = k.copy()
  for _ in range(2):
    q = np.diag(k)
    r2 = np.outer(1 + 2 * q, 1 + 2 * q)
    dot = 4 / np.pi / np.sqrt(r2 - 4 * k ** 2)
    k = 2 / np.pi * np.arcsin(2 * k / np.sqrt(r2))
    t = t * dot
    k = w2 * k + b2
    t = k + w2 * t
  return k, t


def test_demo_prints_kernels_equal_to_the_written_out_recursion():
  result = CliRunner().invoke(main, ["demo"])
  assert result.exit_code == 0, result.output
  assert "NNGP" in result.output and "NTK" in result.output
  out = demo.run(echo=lambda s: None)
  nngp, ntk = erf_network_kernels(out["x"].reshape(-1, 1))
  np.testing.assert_allclose(out["nngp"], nngp, rtol=1e-12)
  np.testing.assert_allclose(out["ntk"], ntk, rtol=1e-12)
  assert f"{nngp[0, 0]:.4f}" in result.output
  # Test points 0, 2, 4, 6, 8 are the training points: the NTK-GP posterior
  # (diag_reg 1e-4) interpolates them with a near-zero variance.
  at_train = out["x_test"][::2]
  np.testing.assert_allclose(at_train, out["x"], rtol=1e-12)
  np.testing.assert_allclose(out["mean"][::2], np.sin(at_train), atol=1e-3)
  assert np.all(out["std"][::2] < 1e-2) and np.all(out["std"][1::2] > 1e-2)


def test_readme_example_interpolates_the_training_data():
  init_fn, apply_fn, kernel_fn = stax.serial(
      stax.Dense(512, W_std=1.5, b_std=0.05), stax.Erf(),
      stax.Dense(512, W_std=1.5, b_std=0.05), stax.Erf(),
      stax.Dense(1, W_std=1.5, b_std=0.05))
  x_train = np.linspace(-np.pi, np.pi, 8).reshape(-1, 1)
  y_train = np.sin(x_train)
  x_test = np.linspace(-np.pi, np.pi, 50).reshape(-1, 1)
  k_train = kernel_fn(x_train, None, "ntk")
  k_test = kernel_fn(x_test, x_train, "ntk")
  assert k_train.shape == (8, 8) and k_test.shape == (50, 8)
  mean = np.asarray(k_test) @ np.linalg.solve(k_train, y_train)
  assert np.all(np.isfinite(mean))
  # x_test's first and last points are training points: the mean interpolates.
  np.testing.assert_allclose(mean[[0, -1]], y_train[[0, -1]], atol=1e-8)
  # Between training points, an NTK-GP on sin data stays close to sin.
  assert np.max(np.abs(mean - np.sin(x_test))) < 0.1
