"""Keyword arguments of `kernel_fn` for the test kernels of an ensemble.

`gradient_descent_mse_ensemble` calls `kernel_fn` three times: train-train
with the parent's `**kernel_fn_train_train_kwargs`, and test-train and
test-test with those overridden by `predict_fn`'s
`**kernel_fn_test_test_kwargs`. As in NT, a keyword whose values are pairs
of arrays (one per input of the finite network, e.g. `pattern=(p1, p2)`)
is combined for the test-train call from the first entry of the test pair
and the first of the train pair; other array values are taken from the test
keywords; any other keyword must agree.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ntcore.errors import PredictArgumentError


def _is_array_tree(x: Any) -> bool:
  leaves = jax.tree_util.tree_leaves(x)
  return bool(leaves) and all(
      isinstance(v, (jax.Array, np.ndarray)) for v in leaves)


def _is_pair(x: Any) -> bool:
  return isinstance(x, tuple) and len(x) == 2


def merge_kwargs(train: dict, test: dict, x_train, x_test
                 ) -> tuple[dict, dict]:
  """`(test_train_kwargs, test_test_kwargs)` from the two sets of keywords.

  Raises:
    PredictArgumentError: if a non-array keyword differs between them.
  """
  del x_train, x_test  # kept for symmetry with NT's signature
  kw_td, kw_tt = dict(train), dict(train)
  for key, v_tt in test.items():
    if key not in train:
      kw_td[key] = kw_tt[key] = v_tt
      continue
    v_dd = train[key]
    if _is_array_tree(v_dd) and _is_array_tree(v_tt):
      v_td = ((v_tt[0], v_dd[0]) if _is_pair(v_dd) and _is_pair(v_tt)
              else v_tt)
    elif _differ(v_dd, v_tt):
      raise PredictArgumentError(
          f"kernel_fn keyword {key!r} is {v_dd!r} for the train-train kernel "
          f"but {v_tt!r} for the test kernels; the test-train kernel needs "
          f"one value. Pass the same value, or arrays (pairs of arrays for "
          f"the two inputs).")
    else:
      v_td = v_tt
    kw_td[key], kw_tt[key] = v_td, v_tt
  return kw_td, kw_tt


def _differ(a: Any, b: Any) -> bool:
  try:
    return bool(a != b)
  except Exception:  # pylint: disable=broad-except
    return a is not b
