"""`ntcore demo`: the NT paper's section 2.1 example, infinite width.

The paper's three-layer Erf network on sin data: its NNGP and NTK, and the
posterior of the infinite ensemble trained to convergence by gradient
descent on the MSE (the NTK-GP, linearization paper eqs. 14-16) — mean and
two-standard-deviation band at a few test points. The layers come from the
registry (the nt-dense plugin), so the demo names the plugin to install when
it is missing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def network():
  """The NT paper's section 2.1 network: Dense(512)-Erf, twice, then Dense(1)."""
  from ntcore import stax  # pylint: disable=import-outside-toplevel
  return stax.serial(
      stax.Dense(512, W_std=1.5, b_std=0.05), stax.Erf(),
      stax.Dense(512, W_std=1.5, b_std=0.05), stax.Erf(),
      stax.Dense(1, W_std=1.5, b_std=0.05))


def data(n_train: int = 5, n_test: int = 9, noise: float = 0.0, seed: int = 0):
  """`sin` on `[-pi, pi]`: training inputs, targets and test inputs, `(n, 1)` each."""
  rng = np.random.default_rng(seed)
  x_train = np.linspace(-np.pi, np.pi, n_train).reshape(-1, 1)
  y_train = np.sin(x_train) + noise * rng.normal(size=x_train.shape)
  x_test = np.linspace(-np.pi, np.pi, n_test).reshape(-1, 1)
  return x_train, y_train, x_test


def _matrix(echo, name, x, mat):
  echo(f"\n{name}:")
  echo("      x " + "".join(f"{v:>9.3f}" for v in x))
  for xi, row in zip(x, mat):
    echo(f"{xi:>7.3f} " + "".join(f"{v:>9.4f}" for v in row))


def run(echo: Callable[[str], None] = print) -> dict:
  """Prints the kernels on the training inputs and the NTK-GP posterior.

  Returns:
    `{"x": (n,), "nngp": (n, n), "ntk": (n, n), "x_test": (m,),
    "mean": (m,), "std": (m,)}` as numpy arrays.
  """
  from ntcore import predict  # pylint: disable=import-outside-toplevel
  _, _, kernel_fn = network()
  x_train, y_train, x_test = data()
  k = kernel_fn(x_train, None, ("nngp", "ntk"))
  nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
  echo("The NT paper's section 2.1 network at infinite width")
  echo("  serial(Dense(512, 1.5, 0.05), Erf, Dense(512, 1.5, 0.05), Erf, "
       "Dense(1, 1.5, 0.05))")
  _matrix(echo, "NNGP on the training inputs", x_train[:, 0], nngp)
  _matrix(echo, "NTK on the training inputs", x_train[:, 0], ntk)

  predict_fn = predict.gradient_descent_mse_ensemble(
      kernel_fn, x_train, y_train, diag_reg=1e-4)
  posterior = predict_fn(x_test=x_test, get="ntk", compute_cov=True)
  mean = np.asarray(posterior.mean)[:, 0]
  std = np.sqrt(np.clip(np.diag(np.asarray(posterior.covariance)), 0, None))
  echo("\nNTK-GP posterior after training to convergence (t = inf), "
       "targets sin(x):")
  echo(f"{'x':>8} {'sin(x)':>9} {'mean':>9} {'2 std':>9}")
  for xi, mi, si in zip(x_test[:, 0], mean, std):
    echo(f"{xi:>8.3f} {np.sin(xi):>9.4f} {mi:>9.4f} {2 * si:>9.4f}")
  return {"x": x_train[:, 0], "nngp": nngp, "ntk": ntk,
          "x_test": x_test[:, 0], "mean": mean, "std": std}
