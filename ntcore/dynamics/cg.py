"""Preconditioned conjugate gradients for `(K + mu I) X = B`, many columns.

The solver behind `solver="cg"` of `gp_inference`, `gradient_descent_mse`
and `gradient_descent_mse_ensemble`. Every column of `B` (the `C` logits of
a classifier, or the test points of a covariance) runs its own CG
recurrence (its own step sizes), but all columns share each pass over the
kernel: one `K @ V` per iteration, `V: (P, active columns)`. Columns that
have converged drop out of the products. Arithmetic is float64 whatever the
kernel's dtype (the kernel's panels are cast as they are read).

Stopping: every column's relative residual `|b - (K + mu I) x| / |b|` is
at most `tol`. The recursive residual of CG drifts from the true one in
finite precision, so at the end the true residual is computed (one more
pass) and, if it is above `tol`, CG restarts from it (at most
`_RESTARTS` times). `CGRecord` reports the iterations, the true relative
residuals and the preconditioner's rank; a solve that does not reach `tol`
within `maxiter` iterations raises `CGConvergenceError` with the remedies.

The loop is written here in NumPy rather than taken from
`jax.scipy.sparse.linalg.cg` or lineax: both run their iterations inside
`lax.while_loop`, so the product must be a traceable JAX function, which
a kernel read from disk block by block is not; neither reports the number
of iterations; and both treat a `(P, Q)` right-hand side as one stacked
vector with shared step sizes (or need `vmap`, which repeats the pass over
the kernel per column). The per-iteration work is the kernel pass; the
loop's own overhead is a few `(P, Q)` vector operations.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, NamedTuple, Optional, Union

import numpy as np

from ntcore.dynamics._preconditioner import (Preconditioner, pivoted_cholesky,
                                             woodbury)
from ntcore.errors import NtcoreError, PredictArgumentError

AUTO_CG_SIZE = 20_000
"""`solver="auto"` uses CG above this many training rows `P` (dense below).

Memory decides, not time: at 20,000 rows the dense path holds about three
`P^2` float64 arrays (9.6 GB) where PCG adds a few hundred MB; a
factorization is still faster there on two cores (docs/iterative-solvers.md).
"""

AUTO_RANK = 512
"""The largest preconditioner rank when `CG(rank=None)`."""

_RESTARTS = 3


class CGConvergenceError(NtcoreError, ArithmeticError):
  """Conjugate gradients did not reach the tolerance within `maxiter`."""


NOT_CONVERGED = (
    "CG did not converge for {what}: after {iterations} iterations the "
    "largest relative residual is {residual:.3g} (tolerance {tol:.0e}; "
    "{bad} of {columns} right-hand sides above it) with a preconditioner of "
    "rank {rank}. The regularized kernel is too ill-conditioned for CG. "
    "Remedies: a larger diag_reg (now {diag_reg}), {precision}a larger "
    "preconditioner rank (solver=CG(rank={more_rank})), or more iterations "
    "(solver=CG(maxiter={more_iter}))."
)

NOT_POSITIVE = (
    "CG broke down for {what} at iteration {iterations}: the regularized "
    "kernel is not positive definite (p^T (K + mu I) p = {curv:.3g} <= 0). "
    "Add a diagonal regularizer (diag_reg > 0, now {diag_reg}), {precision}"
    "or check the kernel."
)

_FLOAT64 = ("the kernel in float64 (jax.config.update('jax_enable_x64', "
            "True)), ")


@dataclasses.dataclass(frozen=True)
class CG:
  """Options of the preconditioned conjugate gradients solver.

  Attributes:
    tol: largest relative residual `|b - A x| / |b|` of each column.
    maxiter: largest number of iterations (kernel passes) per solve.
    rank: largest rank of the pivoted-Cholesky preconditioner (None:
      `AUTO_RANK`); the rank used is chosen from the kernel (see
      `_preconditioner.py`) and may be lower. 0: no preconditioner.
    pivot_batch: kernel rows fetched at a time for the preconditioner.
  """

  tol: float = 1e-10
  maxiter: int = 1000
  rank: Optional[int] = None
  pivot_batch: int = 64

  def __post_init__(self):
    if not (np.isfinite(self.tol) and 0 < self.tol < 1):
      raise PredictArgumentError(f"CG(tol={self.tol!r}): pass a tolerance in "
                                 f"(0, 1), e.g. 1e-10.")
    for name in ("maxiter", "pivot_batch"):
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise PredictArgumentError(f"CG({name}={value!r}): pass a positive "
                                   f"int.")
    if self.rank is not None and (not isinstance(self.rank, (int, np.integer))
                                  or self.rank < 0):
      raise PredictArgumentError(f"CG(rank={self.rank!r}): pass None (chosen "
                                 f"from the kernel) or an int >= 0.")


class CGRecord(NamedTuple):
  """How one CG solve went.

  Attributes:
    what: which solve (e.g. `"ntk: K^-1 y_train"`).
    iterations: CG iterations (each one pass over the kernel).
    residual: `(Q,)` true relative residuals `|b - A x| / |b|` at the end.
    rank: rank of the preconditioner.
    seconds: wall-clock time of the solve, the preconditioner excluded.
    history: largest recursive relative residual after each iteration.
  """

  what: str
  iterations: int
  residual: np.ndarray
  rank: int
  seconds: float
  history: tuple[float, ...]


SolverArg = Union[None, str, CG]


def resolve(solver: SolverArg, size: int, where: str) -> Optional[CG]:
  """The `CG` options `solver` asks for at `P = size`, or None for dense.

  `None` and `"dense"` mean dense factorizations, `"cg"` CG with default
  options, `"auto"` CG above `AUTO_CG_SIZE` rows, a `CG` itself.

  Raises:
    PredictArgumentError: any other value.
  """
  if isinstance(solver, CG):
    return solver
  if solver is None or solver == "dense":
    return None
  if solver == "cg":
    return CG()
  if solver == "auto":
    return CG() if size > AUTO_CG_SIZE else None
  raise PredictArgumentError(
      f"{where}: solver={solver!r}; pass 'dense' (factorize the kernel), "
      f"'cg' (preconditioned conjugate gradients), 'auto' (CG above "
      f"{AUTO_CG_SIZE} rows) or ntcore.predict.CG(...).")


class CGSolver:
  """Solves `(K + mu I) X = B` for one kernel, with one preconditioner.

  Args:
    op: the kernel, a `KernelOperator`.
    mu: the absolute regularizer.
    options: `CG` options.
    diag_reg: the user's `diag_reg`, for messages.
    records: list every solve's `CGRecord` is appended to.
  """

  def __init__(self, op, mu: float, options: CG, diag_reg: float,
               records: list):
    self.op, self.mu, self.options = op, float(mu), options
    self.diag_reg, self.records = diag_reg, records
    self._pre: Optional[Preconditioner] = None

  def preconditioner(self) -> Preconditioner:
    """`(L L^T + sigma I)^{-1}`, built on first use.

    `sigma = mu + mean(diag(K - L L^T))`: the residual the low-rank part
    leaves, replaced by its average, keeps the preconditioner positive
    definite when `mu = 0` and matches `K + mu I`'s trace.
    """
    if self._pre is None:
      o = self.options
      rank = AUTO_RANK if o.rank is None else o.rank
      l = (pivoted_cholesky(self.op, rank, self.mu, batch=o.pivot_batch)
           if rank else np.zeros((self.op.size, 0)))
      rest = self.op.diagonal() - np.einsum("pr,pr->p", l, l)
      sigma = self.mu + max(float(np.mean(rest)), 0.)
      if sigma <= 0:  # a zero (or indefinite) kernel: any positive scale
        sigma = float(np.max(np.abs(self.op.diagonal()), initial=0.)) or 1.
      self._pre = woodbury(l, sigma)
    return self._pre

  def apply(self, v: np.ndarray) -> np.ndarray:
    """`(K + mu I) v`."""
    return self.op.matmul(v) + self.mu * v

  def solve(self, b: np.ndarray, what: str) -> np.ndarray:
    """`X: (P, Q)` float64 with `(K + mu I) X = B`; appends a `CGRecord`.

    Raises:
      CGConvergenceError: see the module docstring.
    """
    b = np.asarray(b, np.float64).reshape(self.op.size, -1)
    pre = self.preconditioner()
    start = time.perf_counter()
    x, history, it = np.zeros_like(b), [], 0
    norm_b = np.linalg.norm(b, axis=0)
    scale = np.where(norm_b > 0, norm_b, 1.)
    r = b.copy()
    for _ in range(_RESTARTS + 1):
      it = _iterate(self.apply, pre, x, r, scale, self.options, it, history,
                    self._breakdown(what))
      r = b - self.apply(x)
      residual = np.linalg.norm(r, axis=0) / scale
      if np.all(residual <= self.options.tol) or it >= self.options.maxiter:
        break
    record = CGRecord(what, it, residual, pre.rank,
                      time.perf_counter() - start, tuple(history))
    self.records.append(record)
    if not np.all(residual <= self.options.tol):
      raise CGConvergenceError(self._message(NOT_CONVERGED, what,
                                             record=record))
    return x

  def _precision(self) -> str:
    return "" if self.op.dtype == np.float64 else _FLOAT64

  def _message(self, template: str, what: str, record=None, **extra) -> str:
    o = self.options
    fields = dict(what=what, diag_reg=self.diag_reg,
                  precision=self._precision(), **extra)
    if record is not None:
      rank = max(record.rank, 1)
      fields.update(
          iterations=record.iterations, residual=float(np.max(
              record.residual)), tol=o.tol,
          bad=int(np.sum(record.residual > o.tol)),
          columns=record.residual.size, rank=record.rank,
          more_rank=min(4 * rank, self.op.size), more_iter=4 * o.maxiter)
    return template.format(**fields)

  def _breakdown(self, what: str) -> Callable[[int, float], None]:
    def fail(iterations: int, curv: float) -> None:
      raise CGConvergenceError(self._message(
          NOT_POSITIVE, what, iterations=iterations, curv=curv))
    return fail


def _iterate(apply, pre, x, r, scale, options: CG, it: int, history: list,
             breakdown) -> int:
  """CG from residual `r` (updating `x`, `r` in place); returns the total
  iteration count."""
  residual = np.linalg.norm(r, axis=0) / scale
  active = residual > options.tol
  z = pre(r)
  p = z.copy()
  rz = np.sum(r * z, axis=0)
  while active.any() and it < options.maxiter:
    pa = p[:, active]
    apa = apply(pa)
    curv = np.sum(pa * apa, axis=0)
    if np.any(curv <= 0):
      breakdown(it + 1, float(np.min(curv)))
    alpha = rz[active] / curv
    x[:, active] += alpha * pa
    r[:, active] -= alpha * apa
    residual[active] = np.linalg.norm(r[:, active], axis=0) / scale[active]
    it += 1
    history.append(float(np.max(residual)))
    active = residual > options.tol
    if not active.any():
      break
    z = pre(r[:, active])
    rz_new = np.sum(r[:, active] * z, axis=0)
    p[:, active] = z + (rz_new / rz[active]) * p[:, active]
    rz[active] = rz_new
  return it
