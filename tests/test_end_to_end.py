"""End to end, through the real installed plugins: the README example.

The demo's own tests are in test_demo.py."""

import numpy as np
from ntcore import stax


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


def test_the_readme_example_prints_what_the_readme_shows():
  """The README's Python block, run as written, prints its output block."""
  import pathlib  # pylint: disable=import-outside-toplevel
  import re  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
  code = re.search(r"```python\n(import numpy as np\nfrom ntcore import stax\n"
                   r".*?)```", readme, re.S).group(1)
  shown = re.search(r"next to the targets.*?```\n(.*?)```", readme,
                    re.S).group(1)
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, check=True)

  def numbers(text):
    return np.array([float(v) for v in re.findall(r"[-+]\d+\.\d+", text)])

  printed = done.stdout
  assert len(printed.splitlines()) == len(shown.splitlines()) == 5
  # Printed to 4 decimals; float32 round-off may move the last digit.
  np.testing.assert_allclose(numbers(printed), numbers(shown), atol=2e-3)
