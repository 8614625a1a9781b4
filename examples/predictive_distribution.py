"""NNGP vs NTK-GP vs a finite ensemble between two training points.

Linearization paper, Figure 2: the outputs of wide networks trained by
gradient descent on the MSE loss are Gaussian at every time, with the mean
and covariance of eqs. 14-15 (`predict.gradient_descent_mse_ensemble`,
`get="ntk"`); training only the readout gives the NNGP's (`get="nngp"`),
whose limit is the Bayesian NNGP posterior (`predict.gp_inference`). The
inputs interpolate between two training inputs, `x(a) = a x1 + (1 - a) x2`.

This script trains an ensemble of finite networks (3 hidden Erf layers, the
paper's tanh replaced by its analytic cousin; W_std^2 = 1.5, no bias) and
prints, along the path, the mean and two standard deviations of the finite
ensemble, of the NTK-GP at the same time, and of the two GPs at t = inf.

Run: `python examples/predictive_distribution.py`.
"""

from __future__ import annotations

import argparse
import sys

import jax
import numpy as np

from ntcore import predict, stax
from ntcore.demo import progress_bar, train_ensemble


def network(width: int, depth: int = 3):
  """`depth` hidden Erf layers of `width`, `W_std^2 = 1.5`, no bias."""
  layers = []
  for _ in range(depth):
    layers += [stax.Dense(width, W_std=1.5 ** 0.5, b_std=None), stax.Erf()]
  return stax.serial(*layers, stax.Dense(1, W_std=1.5 ** 0.5, b_std=None))


def data(n_train: int = 8, dim: int = 4, n_path: int = 21, seed: int = 0):
  """Unit-norm inputs in `R^dim`, `y = sin(3 x . u)`, and the path.

  Returns:
    `x_train (n_train, dim)`, `y_train (n_train, 1)`, `alpha (n_path,)` in
    `[-0.5, 1.5]` (0 and 1 included) and `x_path (n_path, dim)`, where
    `x_path = alpha x_train[0] + (1 - alpha) x_train[1]`.
  """
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n_train, dim))
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  u = rng.normal(size=dim)
  y = np.sin(3 * x @ (u / np.linalg.norm(u)))[:, None]
  alpha = np.linspace(-0.5, 1.5, n_path)
  x_path = alpha[:, None] * x[0] + (1 - alpha[:, None]) * x[1]
  return x, y, alpha, x_path


def _moments(g):
  mean = np.asarray(g.mean)[..., 0]
  var = np.diagonal(np.asarray(g.covariance), axis1=-2, axis2=-1)
  return mean, np.sqrt(np.clip(var, 0, None))


def run(width: int = 256, n_members: int = 64, steps: int = 300,
        seed: int = 0, echo=print, progress=None) -> dict:
  """Predictive distributions on the path; prints a table, returns arrays.

  Returns:
    `{"alpha": (P,), "ensemble": (mean, std), "ntk_t": (mean, std),
    "nngp_t": ..., "ntk_inf": ..., "nngp_inf": ..., "outputs": (M, P),
    "t": steps}`, each mean and std `(P,)`.
  """
  init_fn, apply_fn, kernel_fn = network(width)
  x_train, y_train, alpha, x_path = data(seed=seed)
  k_dd = kernel_fn(x_train, None, ("nngp", "ntk"))
  lr = float(predict.max_learning_rate(k_dd.ntk, y_train.size)) / 3
  ens = train_ensemble(init_fn, apply_fn, x_train, y_train, x_path,
                       key=jax.random.PRNGKey(seed), n_members=n_members,
                       steps=steps, learning_rate=lr, record=[steps],
                       progress=progress)
  outputs = ens.test[-1]
  dyn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train,
                                              learning_rate=lr)
  at_t = dyn(t=float(steps), x_test=x_path, get=("nngp", "ntk"),
             compute_cov=True)
  # t = inf: the Bayesian NNGP posterior and the trained infinite ensemble;
  # a tiny diag_reg (as the NT paper's section 2.1) for the inverse.
  gp = predict.gp_inference(k_dd, y_train, diag_reg=1e-6)
  at_inf = gp(get=("nngp", "ntk"), k_test_train=kernel_fn(x_path, x_train),
              k_test_test=kernel_fn(x_path, None, "nngp"))
  result = {"alpha": alpha, "t": steps, "outputs": outputs,
            "ensemble": (outputs.mean(0), outputs.std(0, ddof=1)),
            "ntk_t": _moments(at_t.ntk), "nngp_t": _moments(at_t.nngp),
            "ntk_inf": _moments(at_inf.ntk),
            "nngp_inf": _moments(at_inf.nngp), "learning_rate": lr}
  _table(echo, result, width, n_members)
  return result


def _table(echo, r, width, n_members) -> None:
  cols = [("ensemble", f"ens. t={r['t']}"), ("ntk_t", f"NTK t={r['t']}"),
          ("nngp_t", f"NNGP t={r['t']}"), ("ntk_inf", "NTK t=inf"),
          ("nngp_inf", "NNGP t=inf")]
  echo(f"Mean +- 2 std on x(a) = a x1 + (1 - a) x2: {n_members} networks "
       f"of width {width} (learning rate {r['learning_rate']:.3f}) vs "
       "the infinite-width GPs")
  echo(f"{'a':>6} " + "".join(f"{name:>17}" for _, name in cols))
  for i, a in enumerate(r["alpha"]):
    if i % 2 == 0:  # every other row: a = -0.4, -0.2, 0, ..., 1, ..., 1.4
      continue
    cells = "".join(
        f"{r[k][0][i]:>+9.3f} +-{2 * r[k][1][i]:<6.3f}" for k, _ in cols)
    echo(f"{a:>6.2f} {cells}")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--width", type=int, default=256)
  parser.add_argument("--members", type=int, default=64)
  parser.add_argument("--steps", type=int, default=300)
  args = parser.parse_args(argv)
  # float64 for the GP posteriors, whose covariances cancel many digits;
  # the finite networks train in float32 either way.
  jax.config.update("jax_enable_x64", True)
  run(width=args.width, n_members=args.members, steps=args.steps,
      progress=progress_bar(sys.stderr.write))


if __name__ == "__main__":
  main()
