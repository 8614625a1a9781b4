"""A low-rank preconditioner for `K + mu I`: pivoted Cholesky and Woodbury.

Partial pivoted Cholesky (Harbrecht, Peters & Schneider 2012; the
preconditioner of GPyTorch, Gardner et al. 2018) builds `L: (P, r)` with
`K ~ L L^T` from `r` rows of `K`, always taking next the row whose residual
diagonal `diag(K - L L^T)` is largest. Because the residual `E = K - L L^T`
stays positive semi-definite, the preconditioned matrix
`(L L^T + mu I)^{-1} (K + mu I)` has its eigenvalues in `[1, 1 + |E| / mu]`
with `|E| <= trace(E)`: CG converges fast once the residual is small next to
the regularizer `mu`.

The rank is chosen from the kernel: pivots are added until the largest
residual diagonal is below `mu` (the remaining directions are then already
well conditioned) or `trace(E) <= rtol * trace(K)`, or `max_rank` is
reached. Rows are fetched `batch` at a time, the largest residual
diagonals first, so that a kernel on disk is read in a few passes rather
than one per pivot; within a batch the factorization is exact, each pivot
updating the batch's remaining rows.

The inverse is applied by Woodbury's identity in its stable form: with the
thin SVD `L = U S V^T` (from `L = Q R` and the SVD of `R`),

    (L L^T + mu I)^{-1} v = U diag(1 / (s^2 + mu)) U^T v + (v - U U^T v) / mu
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Preconditioner:
  """`(L L^T + mu I)^{-1}` as `U`, `1 / (s^2 + mu)` and `1 / mu`.

  Attributes:
    u: `(P, r)` orthonormal columns spanning `L`.
    inv: `(r,)`, `1 / (s^2 + mu)`.
    inv_mu: `1 / mu`.
    rank: `r`.
  """

  u: np.ndarray
  inv: np.ndarray
  inv_mu: float

  @property
  def rank(self) -> int:
    return self.u.shape[1]

  def __call__(self, v: np.ndarray) -> np.ndarray:
    """`(L L^T + mu I)^{-1} v` for `v: (P, Q)`."""
    c = self.u.T @ v
    return self.u @ ((self.inv - self.inv_mu)[:, None] * c) + self.inv_mu * v


def pivoted_cholesky(op, max_rank: int, mu: float, rtol: float = 1e-6,
                     batch: int = 64) -> np.ndarray:
  """`L: (P, r)` with `K2 ~ L L^T`, `r <= max_rank` chosen as above.

  Args:
    op: a `KernelOperator` (its `diagonal()` and `rows(index)` are used).
    max_rank: the largest rank.
    mu: the regularizer the preconditioner is for (stop once every
      residual diagonal is below it).
    rtol: also stop once the residual trace is below `rtol * trace(K)`.
    batch: rows fetched at a time.
  """
  d = np.array(op.diagonal(), np.float64)
  p = d.size
  max_rank = int(min(max_rank, p))
  trace = float(np.sum(np.maximum(d, 0.)))
  # Below this a pivot is round-off: the kernel is exhausted.
  floor = p * np.finfo(np.float64).eps * max(float(np.max(d, initial=0.)), 0.)
  stop = max(mu, floor)
  l = np.zeros((p, max_rank))
  r = 0
  while r < max_rank and np.max(d, initial=0.) > stop and (
      np.sum(np.maximum(d, 0.)) > rtol * trace):
    k = min(batch, max_rank - r)
    picks = np.argsort(-d)[:k]
    picks = picks[d[picks] > stop]
    rows = op.rows(picks).astype(np.float64, copy=False)
    rows -= l[picks, :r] @ l[:, :r].T
    added = 0
    for a, s in enumerate(picks):
      pivot = rows[a, s]
      if pivot <= stop or r >= max_rank:
        continue
      col = rows[a] / np.sqrt(pivot)
      l[:, r] = col
      r += 1
      added += 1
      d -= col * col
      d[s] = 0.
      rows[a + 1:] -= np.outer(col[picks[a + 1:]], col)
    if not added:
      break
  return l[:, :r]


def woodbury(l: np.ndarray, mu: float) -> Preconditioner:
  """The inverse of `L L^T + mu I` (`mu > 0`), by `L = Q R` and the SVD
  of the small `R` (less memory than the SVD of the tall `L`)."""
  if l.shape[1] == 0:
    return Preconditioner(l, np.zeros(0), 1. / mu)
  q, r = np.linalg.qr(l)
  u_r, s, _ = np.linalg.svd(r)
  return Preconditioner(q @ u_r, 1. / (s * s + mu), 1. / mu)
