"""Graphs for `Aggregate`: a dense adjacency or a list of arcs, per example.

Both offer the finite aggregation `y_j = sum_i P[i, j] x_i` and its action
on a kernel's vertex pairs, `P_a^T K_ab P_b`. Vertices are the positions
along the aggregated axes, raveled row-major (`V` of them).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nt_attention.errors import PatternError


class Dense(NamedTuple):
  """Adjacency `(n, V, V)`: `adj[n, i, j]` weighs the arc `i -> j`."""

  adj: jnp.ndarray

  def apply(self, x):
    """`x: (n, V, ...)` -> `y[n, j] = sum_i adj[n, i, j] x[n, i]`."""
    rest = "".join(chr(ord("a") + i) for i in range(x.ndim - 2))
    return jnp.einsum(f"niv,ni{rest}->nv{rest}", self.adj.astype(x.dtype), x)

  def both(self, other, m, one_batch_axis):
    """`P_a^T m_ab Q_b` for `m: (n_a, n_b, V, V, ...)` (`(n, V, V, ...)` if
    `one_batch_axis`)."""
    n_rest = m.ndim - 4 + one_batch_axis
    rest = "".join(chr(ord("a") + i) for i in range(n_rest))
    p, q = self.adj.astype(m.dtype), other.adj.astype(m.dtype)
    if one_batch_axis:
      return jnp.einsum(f"xiv,xij{rest},xjw->xvw{rest}", p, m, q)
    return jnp.einsum(f"xiv,xyij{rest},yjw->xyvw{rest}", p, m, q)


class Sparse(NamedTuple):
  """Arcs `tails -> heads`, `(n, E)` raveled vertices; `valid`: real arcs."""

  tails: jnp.ndarray
  heads: jnp.ndarray
  valid: jnp.ndarray
  n_vertices: int

  def apply(self, x):
    def one(t, h, v, xi):
      msg = xi[t] * _expand(v, xi.ndim - 1).astype(xi.dtype)
      return jax.ops.segment_sum(msg, h, num_segments=self.n_vertices)
    return jax.vmap(one)(self.tails, self.heads, self.valid, x)

  def both(self, other, m, one_batch_axis):
    nv = self.n_vertices

    def one(t1, h1, v1, t2, h2, v2, mi):
      g = mi[t1[:, None], t2[None, :]]  # (E1, E2, ...): every arc pair
      w = v1[:, None] & v2[None, :]
      g = g * _expand(w, g.ndim - 2).astype(g.dtype)
      g = jax.ops.segment_sum(jnp.swapaxes(g, 0, 1), h2, num_segments=nv)
      return jax.ops.segment_sum(jnp.swapaxes(g, 0, 1), h1, num_segments=nv)

    a = (self.tails, self.heads, self.valid)
    b = (other.tails, other.heads, other.valid)
    if one_batch_axis:
      return jax.vmap(one)(*a, *b, m)
    inner = jax.vmap(one, in_axes=(None,) * 3 + (0,) * 3 + (0,))
    return jax.vmap(inner, in_axes=(0,) * 3 + (None,) * 3 + (0,))(*a, *b, m)


def _expand(v, n):
  return v.reshape(v.shape + (1,) * n)


def check_dense(adj, n: int, sizes: tuple[int, ...]):
  """`(n, *sizes, *sizes)` -> `(n, V, V)`, or a `PatternError`."""
  want = (n,) + tuple(sizes) * 2
  if tuple(adj.shape) != want:
    raise PatternError(
        f"Aggregate(implementation='DENSE') needs pattern of shape {want} "
        f"(batch, then the aggregated axes twice: tail, head), got "
        f"{tuple(adj.shape)}. For a list of arcs use implementation='SPARSE'.")
  v = math.prod(sizes)
  return adj.reshape(n, v, v)


def arcs(pattern, n: int, sizes: tuple[int, ...]):
  """`(tails, heads, valid, V)` from a SPARSE pattern `(n, E, K, 2)`."""
  k = len(sizes)
  shape = tuple(pattern.shape)
  if not jnp.issubdtype(pattern.dtype, jnp.integer):
    raise PatternError(f"Aggregate(implementation='SPARSE') needs an integer "
                       f"pattern of arcs, got dtype {pattern.dtype}.")
  if k == 1 and len(shape) == 3:
    pattern = pattern[:, :, None, :]
  if pattern.ndim != 4 or pattern.shape[2:] != (k, 2) or pattern.shape[0] != n:
    raise PatternError(
        f"Aggregate(implementation='SPARSE') needs pattern of shape "
        f"({n}, n_edges, {k}, 2) (batch, arcs, one coordinate per aggregated "
        f"axis, (tail, head)){' or (%d, n_edges, 2)' % n if k == 1 else ''}, "
        f"got {shape}.")
  tails, heads = pattern[..., 0], pattern[..., 1]
  valid = jnp.all(tails >= 0, -1) & jnp.all(heads >= 0, -1)

  def ravel(idx):
    flat = jnp.ravel_multi_index(tuple(idx[..., i] for i in range(k)), sizes,
                                 mode="wrap")
    return jnp.where(valid, flat, 0)

  return ravel(tails), ravel(heads), valid, math.prod(sizes)


def pair(pattern, x1_is_x2: bool):
  """`(P1, P2)` from `kernel_fn`'s `pattern` keyword."""
  if pattern is None:
    return None, None
  if not isinstance(pattern, (tuple, list)):
    if x1_is_x2:
      return pattern, pattern
    raise PatternError("Aggregate: with x2 given, pass pattern=(pattern1, "
                       "pattern2), one graph per batch.")
  if len(pattern) != 2:
    raise PatternError(f"Aggregate: pattern must be a pair (pattern1, "
                       f"pattern2), got {len(pattern)} entries.")
  p1, p2 = pattern
  if p2 is None and x1_is_x2:
    p2 = p1
  if (p1 is None) != (p2 is None):
    raise PatternError(
        "Aggregate: pattern has exactly one of pattern1/pattern2 set to None. "
        "Give a graph for both batches (or pattern=None for no aggregation).")
  return p1, p2


def transform(m, b: int, shape: tuple[int, ...], dims, ga, gb):
  """`ga^T m gb` over the aggregated dims `dims` of an interleaved array.

  `m` has `b` batch axes and the spatial pairs `(h, h', w, w', ...)` of
  `shape` in natural order; the other pairs are carried along.
  """
  d = len(shape)
  rest = [i for i in range(d) if i not in dims]
  perm = (list(range(b)) + [b + 2 * i for i in dims]
          + [b + 2 * i + 1 for i in dims]
          + sum(([b + 2 * i, b + 2 * i + 1] for i in rest), []))
  t = jnp.transpose(m, perm)
  front = t.shape
  v = math.prod(shape[i] for i in dims)
  t = t.reshape(front[:b] + (v, v) + front[b + 2 * len(dims):])
  t = ga.both(gb, t, b == 1)
  return jnp.transpose(t.reshape(front), np.argsort(perm))
