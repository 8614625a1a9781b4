"""`ntcore demo`: the NT paper's section 2.1 experiment (its Figure 1).

The paper's three-layer Erf network on noisy `sin` data, twice: an ensemble
of finite networks trained by full-batch gradient descent on the MSE loss,
and the infinite ensemble of infinitely wide networks, whose outputs are a
Gaussian process at every time with the closed-form mean and covariance of
`predict.gradient_descent_mse_ensemble` (linearization paper eqs. 14-15).
The demo prints the kernels on the training inputs, then a table of mean
train and test loss of both over training time, and writes the paper's
figure (loss curves, outputs with two-standard-deviation bands) when
matplotlib is installed.

The layers come from the registry (the nt-dense plugin), so the demo names
the plugin to install when it is missing. The default width is 256, not the
paper's 2048: 64 members of width 2048 take ~16x longer per step, minutes
on a laptop CPU (`ntcore demo --width 2048` runs the paper's size).
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import numpy as np

from ntcore._demo_ensemble import (EnsembleRun, Progress, progress_bar,
                                   train_ensemble)
from ntcore.errors import DemoArgumentError

__all__ = ["EnsembleRun", "MINIMA", "check_arguments", "data", "infinite",
           "network", "progress_bar", "record_steps", "run",
           "train_ensemble"]

Echo = Callable[[str], None]


def network(width: int = 512):
  """The NT paper's section 2.1 network: Dense(width)-Erf twice, Dense(1)."""
  from ntcore import stax  # pylint: disable=import-outside-toplevel
  return stax.serial(
      stax.Dense(width, W_std=1.5, b_std=0.05), stax.Erf(),
      stax.Dense(width, W_std=1.5, b_std=0.05), stax.Erf(),
      stax.Dense(1, W_std=1.5, b_std=0.05))


def data(n_train: int = 5, n_test: int = 50, noise: float = 0.1,
         seed: int = 0):
  """The paper's task: `y = sin(x) + N(0, noise^2)`, `x ~ U(-pi, pi)`.

  Returns:
    `x_train (n_train, 1)` sorted, `y_train (n_train, 1)`, and `x_test
    (n_test, 1)` evenly spaced on `[-pi, pi]` (its targets are `sin`).
  """
  rng = np.random.default_rng(seed)
  x_train = np.sort(rng.uniform(-np.pi, np.pi, (n_train, 1)), axis=0)
  y_train = np.sin(x_train) + noise * rng.normal(size=x_train.shape)
  x_test = np.linspace(-np.pi, np.pi, n_test).reshape(-1, 1)
  return x_train, y_train, x_test


def record_steps(steps: int, n: int = 40, extra=()) -> np.ndarray:
  """`0`, about `n` log-spaced steps up to `steps`, and the `extra` ones.

  Returns:
    Increasing ints in `[0, steps]`, `steps` included.
  """
  t = np.r_[0, np.geomspace(1, steps, n).round(), np.asarray(extra, float)]
  return np.unique(t[t <= steps]).astype(int)


def infinite(kernel_fn, x_train, y_train, x_test, t, learning_rate) -> dict:
  """Closed-form moments and losses of the infinite ensemble at times `t`.

  The loss of the ensemble is the expected MSE loss, `E (f - y)^2 / 2 =
  ((mean - y)^2 + var) / 2` averaged over inputs.

  Returns:
    `{"mean": (T, n_test), "std": (T, n_test), "train_loss": (T,),
    "test_loss": (T,)}`.
  """
  from ntcore import predict  # pylint: disable=import-outside-toplevel
  predict_fn = predict.gradient_descent_mse_ensemble(
      kernel_fn, x_train, y_train, learning_rate=learning_rate)
  out = {}
  for name, x, y in (("train", None, y_train),
                     ("test", x_test, np.sin(x_test))):
    g = predict_fn(t=t, x_test=x, get="ntk", compute_cov=True)
    mean = np.asarray(g.mean)[..., 0]
    var = np.clip(np.diagonal(np.asarray(g.covariance), axis1=1, axis2=2),
                  0, None)
    out[f"{name}_loss"] = 0.5 * np.mean((mean - y[:, 0]) ** 2 + var, axis=1)
    out["mean"], out["std"] = mean, np.sqrt(var)
  return out


def _finite_loss(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Mean over members of each member's loss: `(R, M, n)` -> `(R,)`."""
  return 0.5 * np.mean((outputs - y[None, None, :]) ** 2, axis=(1, 2))


def _matrix(echo: Echo, name: str, x: np.ndarray, mat: np.ndarray) -> None:
  echo(f"\n{name}:")
  echo("      x " + "".join(f"{v:>9.3f}" for v in x))
  for xi, row in zip(x, mat):
    echo(f"{xi:>7.3f} " + "".join(f"{v:>9.4f}" for v in row))


MINIMA = {"width": (1, "--width", "a layer needs at least one unit"),
          "n_members": (2, "--members", "the ensemble's spread needs two "
                        "networks"),
          "steps": (1, "--steps", "training takes at least one step"),
          "n_test": (1, "", "the test curve needs a point")}
"""Smallest valid value of each integer argument of `run`, its CLI flag, why."""


def check_arguments(**values: int) -> None:
  """Raises `DemoArgumentError` for an argument of `run` below its minimum."""
  for name, value in values.items():
    low, flag, why = MINIMA[name]
    label = f"{name} ({flag})" if flag else name
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
      raise DemoArgumentError(
          f"demo: {label} must be an integer >= {low}, got "
          f"{type(value).__name__} {value!r}.")
    if value < low:
      raise DemoArgumentError(
          f"demo: {label} must be >= {low} ({why}), got {value}.")


def run(echo: Echo = print, *, width: int = 256, n_members: int = 64,
        steps: int = 1000, seed: int = 0, n_test: int = 50,
        plot: Optional[str] = None, progress: Optional[Progress] = None,
        table_steps: tuple[int, ...] = (0, 10, 100, 1000)) -> dict:
  """Runs the experiment, prints kernels and the loss table, plots if asked.

  Args:
    echo: prints one line.
    width: hidden width of the finite networks.
    n_members: size of the finite ensemble.
    steps: gradient descent steps.
    seed: seed of the data and of the initializations.
    n_test: test inputs, evenly spaced on `[-pi, pi]`.
    plot: path of the figure (`.png`, `.pdf` or `.svg`: the suffix picks
      the format); None for no figure. Without matplotlib the figure is
      skipped with a line saying how to install it.
    progress: `progress(done, total, seconds)` during training, or None.
    table_steps: steps shown in the table (the last step is always shown).

  Returns:
    A dict of numpy arrays: `x, y (n_train,)`, `nngp, ntk (n_train,
    n_train)`, `x_test (n_test,)`, `t (T,)` recorded steps, `{train,
    test}_loss_{finite,inf} (T,)`, `{mean,std}_{finite,inf} (T, n_test)`,
    `outputs_train (T, M, n_train)`, `outputs_test (T, M, n_test)`, plus
    `learning_rate`, `width`, `n_members`, `seconds` (training time) and
    `plot` (path or None).

  Raises:
    DemoArgumentError: if `width`, `n_members`, `steps` or `n_test` is below
      its minimum (`MINIMA`).
  """
  check_arguments(width=width, n_members=n_members, steps=steps,
                  n_test=n_test)
  from ntcore import predict  # pylint: disable=import-outside-toplevel
  init_fn, apply_fn, kernel_fn = network(width)
  x_train, y_train, x_test = data(n_test=n_test, seed=seed)
  k = kernel_fn(x_train, None, ("nngp", "ntk"))
  nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
  echo("The NT paper's section 2.1 network, y = sin(x) + noise, "
       f"{x_train.shape[0]} training points")
  echo(f"  serial(Dense({width}, 1.5, 0.05), Erf, Dense({width}, 1.5, 0.05),"
       " Erf, Dense(1, 1.5, 0.05))")
  _matrix(echo, "NNGP on the training inputs", x_train[:, 0], nngp)
  _matrix(echo, "NTK on the training inputs", x_train[:, 0], ntk)

  # A third of the largest stable step (NT's cookbook ratio): gradient
  # descent then follows the gradient flow the closed form describes.
  lr = float(predict.max_learning_rate(ntk, y_train.size)) / 3
  t = record_steps(steps, extra=table_steps)
  echo(f"\nTraining {n_members} networks of width {width} for {steps} steps "
       f"of full-batch gradient descent, learning rate {lr:.4f}.")
  ens = train_ensemble(init_fn, apply_fn, x_train, y_train, x_test,
                       key=jax.random.PRNGKey(seed), n_members=n_members,
                       steps=steps, learning_rate=lr, record=t,
                       progress=progress)
  inf = infinite(kernel_fn, x_train, y_train, x_test, t.astype(float), lr)
  result = {
      "x": x_train[:, 0], "y": y_train[:, 0], "nngp": nngp, "ntk": ntk,
      "x_test": x_test[:, 0], "t": t, "learning_rate": lr, "width": width,
      "n_members": n_members, "seconds": ens.seconds,
      "train_loss_finite": _finite_loss(ens.train, y_train[:, 0]),
      "test_loss_finite": _finite_loss(ens.test, np.sin(x_test[:, 0])),
      "train_loss_inf": inf["train_loss"], "test_loss_inf": inf["test_loss"],
      "mean_finite": ens.test.mean(axis=1),
      "std_finite": ens.test.std(axis=1, ddof=1),
      "mean_inf": inf["mean"], "std_inf": inf["std"],
      "outputs_train": ens.train, "outputs_test": ens.test, "plot": None}
  _table(echo, result, table_steps)
  if plot is not None:
    _plot(echo, plot, result)
  return result


def _table(echo: Echo, r: dict, table_steps: tuple[int, ...]) -> None:
  echo(f"\nMean loss (MSE / 2), finite ensemble vs infinite width "
       f"(training took {r['seconds']:.1f}s):")
  echo(f"{'step':>6} {'train finite':>13} {'train inf':>11} "
       f"{'test finite':>12} {'test inf':>10} {'max |mean gap|':>15} "
       f"{'std ratio':>10}")
  rows = sorted({s for s in table_steps if s in r["t"]} | {int(r["t"][-1])})
  for s in rows:
    i = int(np.searchsorted(r["t"], s))
    gap = np.max(np.abs(r["mean_finite"][i] - r["mean_inf"][i]))
    ratio = np.mean(r["std_finite"][i]) / np.mean(r["std_inf"][i])
    echo(f"{s:>6} {r['train_loss_finite'][i]:>13.4f} "
         f"{r['train_loss_inf'][i]:>11.4f} {r['test_loss_finite'][i]:>12.4f} "
         f"{r['test_loss_inf'][i]:>10.4f} {gap:>15.4f} {ratio:>10.3f}")
  echo("(test targets are sin(x) at the test inputs; std ratio: mean "
       "finite / mean infinite standard deviation over the test inputs)")


def _plot(echo: Echo, path: str, result: dict) -> None:
  # pylint: disable=import-outside-toplevel
  from ntcore import _demo_plot
  if not _demo_plot.have_matplotlib():
    echo("\n" + _demo_plot.PLOT_HINT)
    return
  _demo_plot.save_figure(path, result)
  result["plot"] = path
  echo(f"\nWrote the figure (loss curves; outputs with 2-std bands) to {path}")
