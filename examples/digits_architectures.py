"""Architectures compared on real images (NT paper section 2.3, Figure 3).

Exact infinite-time inference with the NNGP (the Bayesian posterior mean)
and the NTK (the infinite ensemble trained to convergence by gradient
descent, `predict.gp_inference`) of three architectures of `ntcore.models`
— FullyConnected (FC), ConvOnly (convolutions, no pooling) and WideResnet
(WRN, global average pooling) — on scikit-learn's digits (8x8 images, 10
classes) as a function of training-set size, with test accuracy, next to an
RBF-kernel SVM (scikit-learn's `SVC`, default settings) on the same pixels.

The harder variant pastes each digit at a random offset on a larger canvas,
where a translation-invariant architecture (WRN pools globally) should
matter more. The paper's ordering (FC < ConvOnly < WRN) is reported, not
assumed.

Run: `python examples/digits_architectures.py` (needs scikit-learn).
"""

from __future__ import annotations

import argparse
import collections
import time

import jax
import numpy as np

from ntcore import models, predict

Pair = collections.namedtuple("Pair", ["nngp", "ntk"])


def architectures() -> dict:
  """The three models of the paper's Figure 3, sized for 8x8 inputs."""
  return {
      "FC": models.FullyConnected(depth=3, W_std=2 ** 0.5, b_std=0.1),
      "ConvOnly": models.ConvOnly(depth=3, W_std=2 ** 0.5, b_std=0.1),
      "WRN": models.WideResnet(block_size=1, k=1, num_classes=1),
  }


def digits(n_train: int, n_test: int, canvas: int = 8, seed: int = 0):
  """Digits as NHWC images in [0, 1]; digits at random offsets if `canvas > 8`.

  Returns:
    `x_train (n_train, canvas, canvas, 1)`, `labels_train (n_train,)`,
    `x_test`, `labels_test`; the split is a seeded permutation.
  """
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  data = load_digits()
  rng = np.random.default_rng(seed)
  idx = rng.permutation(len(data.target))[:n_train + n_test]
  images = data.images[idx] / 16.
  x = np.zeros((len(idx), canvas, canvas, 1))
  for i, (dy, dx) in enumerate(rng.integers(0, canvas - 7, (len(idx), 2))):
    x[i, dy:dy + 8, dx:dx + 8, 0] = images[i]
  labels = data.target[idx]
  return x[:n_train], labels[:n_train], x[n_train:], labels[n_train:]


def kernels(kernel_fn, x_train, x_test, block: int = 20):
  """`Pair`s of train-train `(n, n)` and test-train `(m, n)` NNGP and NTK.

  Computed in `block x block` tiles by one jitted `kernel_fn`, so that the
  spatial covariances of a tile (`block^2 (HW)^2` numbers for a pooling
  network) fit in memory; the last tile is padded to the same shape.
  """
  fn = jax.jit(lambda a, b: kernel_fn(a, b, ("nngp", "ntk")))
  # Diagonal tiles with x2=None, as one call would: the cross formula at
  # x1 == x2 loses ~half the digits (arc-cosine kernels near c = 1).
  fn_diag = jax.jit(lambda a: kernel_fn(a, None, ("nngp", "ntk")))
  x = np.concatenate([x_train, x_test])
  n = x.shape[0]
  pad = -n % block
  xp = np.concatenate([x, np.zeros((pad,) + x.shape[1:])])
  tiles = [xp[i:i + block] for i in range(0, n + pad, block)]
  nngp = np.zeros((n + pad, n + pad))
  ntk = np.zeros_like(nngp)
  nt_ = x_train.shape[0]
  for i, a in enumerate(tiles):
    for j, b in enumerate(tiles):
      # Only rows of the train set and test rows against train columns.
      if j * block >= nt_ or (j > i and i * block < nt_):
        continue
      k = fn_diag(a) if i == j else fn(a, b)
      rows, cols = slice(i * block, (i + 1) * block), slice(
          j * block, (j + 1) * block)
      nngp[rows, cols], ntk[rows, cols] = np.asarray(k.nngp), np.asarray(k.ntk)
  # Fill the upper train-train triangle by symmetry.
  nngp_dd, ntk_dd = nngp[:nt_, :nt_], ntk[:nt_, :nt_]
  upper = np.triu(np.ones((nt_, nt_), bool), 1)
  nngp_dd[upper], ntk_dd[upper] = nngp_dd.T[upper], ntk_dd.T[upper]
  return (Pair(nngp_dd, ntk_dd),
          Pair(nngp[nt_:n, :nt_], ntk[nt_:n, :nt_]))


def accuracies(k_dd: Pair, k_td: Pair, labels_train, labels_test,
               sizes) -> dict:
  """NNGP and NTK test accuracy for the first `n` training points, each `n`."""
  out = {"NNGP": [], "NTK": []}
  for n in sizes:
    y = np.eye(10)[labels_train[:n]] - 0.1  # centred one-hot, as NT does
    sub = Pair(k_dd.nngp[:n, :n], k_dd.ntk[:n, :n])
    predict_fn = predict.gp_inference(sub, y, diag_reg=1e-4)
    for get, name in (("nngp", "NNGP"), ("ntk", "NTK")):
      mean = predict_fn(get=get, k_test_train=getattr(k_td, get)[:, :n])
      out[name].append(np.mean(np.argmax(np.asarray(mean), 1) == labels_test))
  return out


def svm_accuracy(x_train, labels_train, x_test, labels_test, sizes) -> list:
  """RBF-kernel SVM (scikit-learn defaults) on the flattened pixels."""
  from sklearn.svm import SVC  # pylint: disable=import-outside-toplevel
  flat = lambda x: x.reshape(len(x), -1)
  return [float(np.mean(SVC(kernel="rbf").fit(
      flat(x_train[:n]), labels_train[:n]).predict(flat(x_test))
                        == labels_test)) for n in sizes]


def run(sizes=(10, 20, 40, 80, 160), n_test: int = 200, canvas: int = 8,
        names=("FC", "ConvOnly", "WRN"), seed: int = 0, echo=print) -> dict:
  """Test accuracy of each kernel and the SVM for each training-set size.

  Returns:
    `{"sizes": tuple, "acc": {"FC NNGP": [...], ..., "RBF SVM": [...]},
    "seconds": {model: float}}`, accuracies in `[0, 1]` per size.
  """
  x_tr, l_tr, x_te, l_te = digits(max(sizes), n_test, canvas, seed)
  acc, seconds = {}, {}
  nets = architectures()
  for name in names:
    start = time.perf_counter()
    k_dd, k_td = kernels(nets[name][2], x_tr, x_te)
    for kind, values in accuracies(k_dd, k_td, l_tr, l_te, sizes).items():
      acc[f"{name} {kind}"] = values
    seconds[name] = time.perf_counter() - start
  acc["RBF SVM"] = svm_accuracy(x_tr, l_tr, x_te, l_te, sizes)
  result = {"sizes": tuple(sizes), "acc": acc, "seconds": seconds}
  where = ("8x8 digits" if canvas == 8 else
           f"digits at random offsets on a {canvas}x{canvas} canvas")
  echo(f"Test accuracy on {n_test} {where} (chance 0.10), by training-set "
       "size:")
  echo(f"{'model':<16}" + "".join(f"{n:>8}" for n in sizes))
  for model, values in acc.items():
    echo(f"{model:<16}" + "".join(f"{v:>8.3f}" for v in values))
  echo("kernel time: " + ", ".join(f"{k} {v:.1f}s" for k, v in
                                   seconds.items()))
  return result


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", type=int, nargs="+",
                      default=[10, 20, 40, 80, 160])
  parser.add_argument("--test", type=int, default=200)
  parser.add_argument("--canvas", type=int, default=12,
                      help="canvas of the shifted variant (0: skip it)")
  parser.add_argument("--shifted-sizes", type=int, nargs="+",
                      default=[20, 40, 80])
  parser.add_argument("--shifted-test", type=int, default=100)
  args = parser.parse_args(argv)
  # float64: the kernels are inverted with diag_reg 1e-4.
  jax.config.update("jax_enable_x64", True)
  run(sizes=tuple(args.sizes), n_test=args.test)
  if args.canvas:
    print()
    run(sizes=tuple(args.shifted_sizes), n_test=args.shifted_test,
        canvas=args.canvas)


if __name__ == "__main__":
  main()
