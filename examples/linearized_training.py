"""Linearized vs real training (linearization paper, Figure 3).

A wide ReLU network and its first-order Taylor expansion in the parameters
around the initialization (`nt.linearize`) start from the same parameters
and take the same full-batch gradient descent steps on the MSE loss. The
paper finds their outputs stay close, closer the wider the network
(the gap shrinks like `1/sqrt(width)`). This script measures the RMSE
between the two models' outputs on test inputs over training time, for
several widths, on a binary task from scikit-learn's digits (digit < 5 vs
>= 5, targets +-1), as the paper's binary CIFAR task.

Run: `python examples/linearized_training.py` (needs scikit-learn).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import ntcore as nt
from ntcore import predict, stax


def network(width: int, depth: int = 2):
  """`depth` hidden ReLU layers, W_std^2 = 2, b_std^2 = 0.1, as the paper."""
  layers = []
  for _ in range(depth):
    layers += [stax.Dense(width, W_std=2 ** 0.5, b_std=0.1 ** 0.5),
               stax.Relu()]
  return stax.serial(*layers, stax.Dense(1, W_std=2 ** 0.5,
                                         b_std=0.1 ** 0.5))


def digits_binary(n_train: int, n_test: int, seed: int = 0):
  """Digits flattened, centred and scaled to unit norm; targets +-1 (< 5).

  Centring removes the all-positive pixels' common direction, which would
  give the NTK one large eigenvalue and force a small learning rate.

  Returns:
    `x_train (n_train, 64)`, `y_train (n_train, 1)`, `x_test (n_test, 64)`,
    `y_test (n_test, 1)`.
  """
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  x, labels = load_digits(return_X_y=True)
  x = x - x.mean(axis=0)
  x = x / np.linalg.norm(x, axis=1, keepdims=True)
  y = np.where(labels < 5, 1., -1.)[:, None]
  idx = np.random.default_rng(seed).permutation(len(x))
  tr, te = idx[:n_train], idx[n_train:n_train + n_test]
  return x[tr], y[tr], x[te], y[te]


def train_side_by_side(init_fn, apply_fn, x_train, y_train, x_test, *,
                       keys, learning_rate: float, steps: int, every: int):
  """Trains networks and their linearizations with the same gradient descent.

  Args:
    init_fn, apply_fn: the finite network.
    x_train, y_train, x_test: data, `(n, d)` and `(n, 1)`.
    keys: `(S, 2)` PRNG keys, one network per key.
    learning_rate: step size of the loss `1/(2N) |f - y|^2`.
    steps: gradient descent steps (a multiple of `every`).
    every: steps between recorded outputs.

  Returns:
    `t (R,)`, and the test outputs of the network and of its linearization,
    `(R, S, n_test)` each, at the steps `t = 0, every, ..., steps`.
  """
  x_tr, y_tr, x_te = map(jnp.asarray, (x_train, y_train, x_test))

  def one(key):
    _, p0 = init_fn(key, x_tr.shape)
    f_lin = nt.linearize(apply_fn, p0)

    def step(f):
      grad = jax.grad(lambda p: 0.5 * jnp.mean((f(p, x_tr) - y_tr) ** 2))
      return lambda p: jax.tree_util.tree_map(
          lambda a, g: a - learning_rate * g, p, grad(p))

    step_nn, step_lin = step(apply_fn), step(f_lin)

    def chunk(ps, _):
      def body(ps, _):
        return (step_nn(ps[0]), step_lin(ps[1])), None
      ps = jax.lax.scan(body, ps, None, length=every)[0]
      return ps, (apply_fn(ps[0], x_te)[:, 0], f_lin(ps[1], x_te)[:, 0])

    _, (nn, lin) = jax.lax.scan(chunk, (p0, p0), None,
                                length=steps // every)
    out0 = apply_fn(p0, x_te)[None, :, 0]
    return jnp.concatenate([out0, nn]), jnp.concatenate([out0, lin])

  nn, lin = jax.jit(jax.vmap(one))(keys)
  t = np.arange(0, steps + 1, every)
  to_rsn = lambda a: np.asarray(a).transpose(1, 0, 2)  # (R, S, n_test)
  return t, to_rsn(nn), to_rsn(lin)


def run(widths=(32, 128, 512), n_train: int = 32, n_test: int = 128,
        steps: int = 300, every: int = 20, n_seeds: int = 2, seed: int = 0,
        lr_fraction: float = 1 / 3, echo=print) -> dict:
  """RMSE between each network and its linearization over training time.

  The learning rate is `lr_fraction` of the largest stable one for the
  infinite-width NTK (`predict.max_learning_rate`), the same for all widths
  (a third, as the demo: the narrow networks' larger empirical NTK stays
  stable).

  Returns:
    `{"t": (R,), "widths": tuple, "rmse": (W, R), "loss_0": (W,),
    "loss_nn": (W,), "loss_lin": (W,), "learning_rate": float}`; RMSE over
    test inputs and seeds; losses: test loss against the labels at t = 0
    and, for both models, at the end.
  """
  x_train, y_train, x_test, y_test = digits_binary(n_train, n_test, seed)
  _, _, kernel_fn = network(widths[0])
  ntk = kernel_fn(x_train, None, "ntk")
  lr = lr_fraction * float(predict.max_learning_rate(ntk, y_train.size))
  rmse, loss_0, loss_nn, loss_lin = [], [], [], []
  keys = jax.random.split(jax.random.PRNGKey(seed), n_seeds)
  start = time.perf_counter()
  for width in widths:
    init_fn, apply_fn, _ = network(width)
    t, nn, lin = train_side_by_side(init_fn, apply_fn, x_train, y_train,
                                    x_test, keys=keys, learning_rate=lr,
                                    steps=steps, every=every)
    rmse.append(np.sqrt(np.mean((nn - lin) ** 2, axis=(1, 2))))
    loss_0.append(0.5 * np.mean((nn[0] - y_test[:, 0]) ** 2))
    loss_nn.append(0.5 * np.mean((nn[-1] - y_test[:, 0]) ** 2))
    loss_lin.append(0.5 * np.mean((lin[-1] - y_test[:, 0]) ** 2))
  result = {"t": t, "widths": tuple(widths), "rmse": np.array(rmse),
            "loss_0": np.array(loss_0), "loss_nn": np.array(loss_nn),
            "loss_lin": np.array(loss_lin), "learning_rate": lr}
  _table(echo, result, n_train, n_test, n_seeds, time.perf_counter() - start)
  return result


def _table(echo, r, n_train, n_test, n_seeds, seconds) -> None:
  t = r["t"]
  cols = [i for i in np.unique(np.linspace(0, len(t) - 1, 5).round()
                               .astype(int))]
  echo(f"RMSE between network and linearization on {n_test} test digits "
       f"({n_train} training, {n_seeds} seeds, learning rate "
       f"{r['learning_rate']:.3f}, {seconds:.1f}s):")
  echo(f"{'width':>6} " + "".join(f"{'t=' + str(t[i]):>10}" for i in cols)
       + f" {'loss t=0':>9} {'loss NN':>9} {'loss lin':>9}")
  for w, rm, l0, ln, ll in zip(r["widths"], r["rmse"], r["loss_0"],
                               r["loss_nn"], r["loss_lin"]):
    echo(f"{w:>6} " + "".join(f"{rm[i]:>10.4f}" for i in cols)
         + f" {l0:>9.4f} {ln:>9.4f} {ll:>9.4f}")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--widths", type=int, nargs="+", default=[32, 128, 512])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--seeds", type=int, default=2)
  args = parser.parse_args(argv)
  # float64: the two models' outputs differ by ~1e-3 at the widest width,
  # which float32 round-off over hundreds of steps would blur.
  jax.config.update("jax_enable_x64", True)
  run(widths=tuple(args.widths), steps=args.steps, n_seeds=args.seeds)


if __name__ == "__main__":
  main()
