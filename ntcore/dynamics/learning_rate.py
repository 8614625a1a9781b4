"""`max_learning_rate`: the largest stable step size of MSE gradient descent."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.dynamics._axes import make_2d
from ntcore.dynamics._linalg import as_float
from ntcore.errors import ShapeError

Array = jnp.ndarray


def max_learning_rate(
    ntk_train_train: Array,
    y_train_size: Optional[int] = None,
    momentum: float = 0.,
    eps: float = 1e-12,
) -> float:
  """Maximal feasible learning rate of (momentum) gradient descent on MSE.

  With loss `1/(2N) |f - y|^2`, one step maps the residual by
  `I - lr / N * Θ`, a contraction iff `lr < 2 N / lam_max(Θ)`; with momentum
  `m` the bound becomes `2 (1 + m) N / lam_max(Θ)` (Goh 2017, "Why Momentum
  Really Works", section "The Dynamics of Momentum").

  Args:
    ntk_train_train: analytic or empirical NTK on the training set,
      `(n, n, ...)` with interleaved axis pairs.
    y_train_size: `N`, the total size of the training targets (`n * C`);
      None infers it from the kernel assuming `trace_axes=()`.
    momentum: momentum of the optimizer.
    eps: added to `lam_max` so that a zero kernel gives a finite value.

  Returns:
    `2 * (1 + momentum) * N / (lam_max + eps)`: a NumPy scalar of the
    kernel's float dtype (a `float` subclass for float64), as NT returns on
    CPU; a scalar array when traced under `jit`.

  Raises:
    ShapeError: if the kernel is not square in its axis pairs.
  """
  k = as_float(ntk_train_train)
  if k.ndim % 2 or k.shape[::2] != k.shape[1::2]:
    raise ShapeError(
        f"ntk_train_train has shape {tuple(k.shape)}; expected a train-train "
        f"kernel with interleaved axis pairs, e.g. (n, n) or (n, n, C, C).")
  k2 = make_2d(k)
  factor = k2.shape[0] if y_train_size is None else y_train_size
  lam_max = jnp.linalg.eigvalsh(k2)[-1]
  lr = 2 * (1 + momentum) * factor / (lam_max + eps)
  try:
    return np.asarray(lr)[()]
  except jax.errors.TracerArrayConversionError:  # under jit: stay an array
    return lr
