"""Range checks of `predict` arguments: learning rates, times, momenta.

Each check runs on concrete values only: inside `jit` the values are not
known, and NT's behaviour (whatever the arithmetic gives) is kept.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ntcore.dynamics._linalg import is_concrete
from ntcore.errors import PredictArgumentError


def _values(x: Any) -> Optional[np.ndarray]:
  """`x` as a float NumPy array, or None if traced."""
  if not is_concrete(x):
    return None
  try:
    return np.asarray(x, dtype=float)
  except (TypeError, ValueError) as e:
    raise PredictArgumentError(
        f"expected a number or an array of numbers, got "
        f"{type(x).__name__} {x!r}.") from e


def check_learning_rate(learning_rate: Any, where: str) -> None:
  """`learning_rate` must be a finite number >= 0.

  Raises:
    PredictArgumentError: naming the value and the valid range.
  """
  values = _values(learning_rate)
  if values is None:
    return
  if values.ndim or not np.isfinite(values) or values < 0:
    raise PredictArgumentError(
        f"{where}: learning_rate={learning_rate!r} is out of range; it must "
        "be a finite scalar >= 0 (the step size of gradient descent; "
        "predict.max_learning_rate(k_train_train) gives the largest stable "
        "one).")


def check_times(t: Any, where: str, allow_inf: bool = True) -> None:
  """Times must be >= 0 and not NaN (`+inf` too only when `allow_inf`).

  Raises:
    PredictArgumentError: naming the bad entries and the valid range.
  """
  if t is None:
    return
  values = _values(t)
  if values is None:
    return
  bad = np.isnan(values) | (values < 0)
  if not allow_inf:
    bad |= np.isinf(values)
  if bad.any():
    first = values.reshape(-1)[np.argmax(bad.reshape(-1))]
    valid = ("times in [0, inf] (t=None or inf is the infinite-time limit)"
             if allow_inf else "finite times >= 0")
    raise PredictArgumentError(
        f"{where}: t holds {int(bad.sum())} invalid time(s), e.g. {first}; "
        f"pass {valid}.")


def check_momentum(momentum: Any, where: str) -> None:
  """`momentum` must be None or a finite number in [0, 1].

  Raises:
    PredictArgumentError: naming the value and the valid range.
  """
  if momentum is None:
    return
  values = _values(momentum)
  if values is None:
    return
  if values.ndim or not np.isfinite(values) or not 0 <= values <= 1:
    raise PredictArgumentError(
        f"{where}: momentum={momentum!r} is out of range; it must be None "
        "(plain gradient flow) or a finite scalar in [0, 1] (1 - momentum is "
        "the friction of heavy-ball gradient descent; above 1 the flow "
        "diverges).")


def check_diag_reg(diag_reg: Any, where: str) -> None:
  """`diag_reg` must be a finite number >= 0.

  Raises:
    PredictArgumentError: naming the value and the valid range.
  """
  values = _values(diag_reg)
  if values is None:
    return
  if values.ndim or not np.isfinite(values) or values < 0:
    raise PredictArgumentError(
        f"{where}: diag_reg={diag_reg!r} is out of range; it must be a "
        "finite scalar >= 0 (added to the kernel's diagonal, in units of its "
        "mean diagonal unless diag_reg_absolute_scale=True).")
