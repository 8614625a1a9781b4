"""sklearn_benchmark.py at a small size: every model is far above chance on
every data set, and the marginal-likelihood fit is a real fit (its accuracy
is that of the fitted, not the starting, hyper-parameters)."""

import numpy as np
import pytest


@pytest.mark.slow
def test_every_model_beats_chance(example):
  """On wine (3 classes, the smallest data set): the full-size script runs
  the same code on all three."""
  mod = example("sklearn_benchmark")
  lines = []
  r = mod.run(n_train=40, n_test=60, splits=2,
              grid={"W_std": [1.0, 2.0], "diag_reg": [1e-2]},
              svm_grid={"C": [1, 10]}, names=["wine"], echo=lines.append)
  chance = {"wine": 0.4}
  assert set(r["acc"]) == set(chance)
  for name, by_model in r["acc"].items():
    assert set(by_model) == set(mod.MODELS)
    for model, values in by_model.items():
      assert len(values) == 2 and all(0 <= v <= 1 for v in values)
      # 40 examples: well above the majority-class rate on each data set.
      assert np.mean(values) > chance[name] + 0.2, (name, model, values)
  assert any("±" in line for line in lines)


def test_marginal_fit_moves_the_hyper_parameters(example):
  mod = example("sklearn_benchmark")
  x, y = mod.datasets()["wine"]
  x = (x[::4] - x.mean(0)) / x.std(0)
  est = mod.marginal_fit(__import__("nt_sklearn").NNGPClassifier, x, y[::4],
                         "nngp")
  assert est.diag_reg_absolute_scale
  start = (1.5, 0.1, 0.1)
  assert (est.W_std, est.b_std, est.diag_reg) != pytest.approx(start, rel=1e-2)
  assert np.mean(est.predict(x) == y[::4]) > 0.9
