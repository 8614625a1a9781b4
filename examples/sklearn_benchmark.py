"""NTK/NNGP classifiers on scikit-learn's small data sets, tuned two ways.

For digits, breast cancer and wine (features standardized on each training
set), test accuracy of `nt_sklearn`'s `NTKClassifier` and `NNGPClassifier`
(a fully-connected ReLU network of depth 2) with `W_std`, `b_std` and the
noise `diag_reg` fitted either

* by marginal likelihood (`predict.fit_marginal_likelihood` on the centred
  one-hot targets; the NTK-GP's likelihood for the NTK classifier), or
* by grid search (`GridSearchCV`, 3-fold, accuracy),

against an RBF SVM (`GridSearchCV` over `C` and `gamma`) and a random forest
(500 trees, scikit-learn's defaults otherwise), averaged over random
stratified splits, with standard errors (std / sqrt(splits)).

Run: `python examples/sklearn_benchmark.py` (needs nt-sklearn, scikit-learn).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from ntcore import predict

DEPTH = 2
GRID = {"W_std": [1.0, 1.5, 2.0], "b_std": [0.05, 0.5],
        "diag_reg": [1e-3, 1e-2, 1e-1]}
SVM_GRID = {"C": [0.1, 1, 10, 100], "gamma": ["scale", 0.01, 0.1]}
MODELS = ("NTK (marginal lik.)", "NTK (grid search)", "NNGP (marginal lik.)",
          "NNGP (grid search)", "RBF SVM (grid search)", "random forest")


def datasets() -> dict:
  """`{name: (X, y)}` of the three data sets scikit-learn ships."""
  from sklearn import datasets as d  # pylint: disable=import-outside-toplevel
  return {name: load(return_X_y=True) for name, load in (
      ("digits", d.load_digits), ("breast cancer", d.load_breast_cancer),
      ("wine", d.load_wine))}


def marginal_fit(cls, x, y, get: str):
  """`cls` with `W_std`, `b_std`, `diag_reg` maximizing the evidence."""
  from nt_sklearn import fully_connected  # pylint: disable=import-outside-toplevel
  classes = np.unique(y)
  targets = (y[:, None] == classes).astype(float) - 1. / len(classes)
  fit = predict.fit_marginal_likelihood(
      lambda W_std, b_std: fully_connected(DEPTH, W_std, b_std), x, targets,
      {"W_std": 1.5, "b_std": 0.1, "diag_reg": 0.1}, get=get,
      bounds={"W_std": (0.1, 10.), "b_std": (1e-3, 10.),
              "diag_reg": (1e-6, 10.)})
  return cls(depth=DEPTH, W_std=fit.params["W_std"],
             b_std=fit.params["b_std"], diag_reg=fit.params["diag_reg"],
             diag_reg_absolute_scale=True).fit(x, y)


def fitted_models(x, y, grid, svm_grid, seed):
  """Each of `MODELS` fitted on `(x, y)`."""
  # pylint: disable=import-outside-toplevel
  from sklearn.ensemble import RandomForestClassifier
  from sklearn.model_selection import GridSearchCV
  from sklearn.svm import SVC

  from nt_sklearn import NNGPClassifier, NTKClassifier
  search = lambda est, g: GridSearchCV(est, g, cv=3).fit(x, y)
  return {
      "NTK (marginal lik.)": marginal_fit(NTKClassifier, x, y, "ntk"),
      "NTK (grid search)": search(NTKClassifier(depth=DEPTH), grid),
      "NNGP (marginal lik.)": marginal_fit(NNGPClassifier, x, y, "nngp"),
      "NNGP (grid search)": search(NNGPClassifier(depth=DEPTH), grid),
      "RBF SVM (grid search)": search(SVC(), svm_grid),
      "random forest": RandomForestClassifier(
          n_estimators=500, random_state=seed).fit(x, y),
  }


def run(n_train: int = 200, n_test: int = 300, splits: int = 5,
        grid=None, svm_grid=None, names=None, echo=print) -> dict:
  """Accuracy of every model on every data set, over `splits` splits.

  Returns:
    `{"acc": {data set: {model: [accuracy per split]}}, "seconds": float}`.
  """
  # pylint: disable=import-outside-toplevel
  from sklearn.model_selection import train_test_split
  from sklearn.preprocessing import StandardScaler
  start = time.perf_counter()
  acc = {}
  for name, (x_all, y_all) in datasets().items():
    if names and name not in names:
      continue
    acc[name] = {m: [] for m in MODELS}
    for seed in range(splits):
      n_tr = min(n_train, len(y_all) // 2)
      x_tr, x_te, y_tr, y_te = train_test_split(
          x_all, y_all, train_size=n_tr,
          test_size=min(n_test, len(y_all) - n_tr), stratify=y_all,
          random_state=seed)
      scaler = StandardScaler().fit(x_tr)
      x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)
      models = fitted_models(x_tr, y_tr, grid or GRID, svm_grid or SVM_GRID,
                             seed)
      for model, est in models.items():
        acc[name][model].append(float(np.mean(est.predict(x_te) == y_te)))
  result = {"acc": acc, "seconds": time.perf_counter() - start}
  echo(f"Test accuracy (mean ± standard error over {splits} splits; at most "
       f"{n_train} training examples):")
  echo(f"{'model':<24}" + "".join(f"{n:>18}" for n in acc))
  for model in MODELS:
    cells = []
    for name in acc:
      v = np.array(acc[name][model])
      se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
      cells.append(f"{v.mean():.3f} ± {se:.3f}")
    echo(f"{model:<24}" + "".join(f"{c:>18}" for c in cells))
  echo(f"time: {result['seconds']:.0f} s")
  return result


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--train", type=int, default=200)
  parser.add_argument("--test", type=int, default=300)
  parser.add_argument("--splits", type=int, default=5)
  args = parser.parse_args(argv)
  # float64: the kernels are inverted with diag_reg down to 1e-6.
  jax.config.update("jax_enable_x64", True)
  run(args.train, args.test, args.splits)


if __name__ == "__main__":
  main()
