"""`Aggregate`: message passing over a graph on the positions (GNN layers).

`y_j = sum_i P[i, j] x_i`: each vertex (position along the aggregated axes)
is replaced by the weighted sum of its predecessors, per example, with no
parameters. Finite and infinite width alike, the graph is passed at call
time as `apply_fn(params, x, pattern=P)` and
`kernel_fn(x1, x2, get, pattern=(P1, P2))`.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import jax.numpy as jnp

from ntcore import Diag, Requirements, enums, make_layer

from nt_attention import _graph, _spatial
from nt_attention.errors import PatternError

Axes = Union[int, Sequence[int]]


AggregateImplementation = enums.AggregateImplementation


def Aggregate(aggregate_axis: Optional[Axes] = None, batch_axis: int = 0,
              channel_axis: int = -1,
              to_dense: Optional[Callable] = lambda p: p,
              implementation: str = "DENSE"):
  """Graph aggregation `y_j = sum_i P[i, j] x_i` over positions (vertices).

  Args:
    aggregate_axis: the (spatial) axes whose positions are the vertices;
      None for every axis but the batch and channel ones. Other spatial axes
      are carried along (each slice aggregated alike).
    batch_axis, channel_axis: axes of the inputs.
    to_dense: DENSE only: applied to `pattern` before use (e.g. to decode a
      compressed adjacency); identity by default.
    implementation: "DENSE": `pattern` is a (weighted) adjacency tensor
      `(n, X_1, ..., X_K, X_1, ..., X_K)` (`K` aggregated axes), entry
      `[n, i, j]` the weight of the arc from `i` to `j` in example `n`.
      "SPARSE": `pattern` holds integer arcs, `(n, n_edges, K, 2)` (or
      `(n, n_edges, 2)` when `K == 1`), the last axis `(tail, head)`; repeated
      arcs add up. An arc with a negative coordinate at either end is
      padding and ignored (NT ignores negative heads, but reads a negative
      tail as the last vertex; padding both ends is what its docs intend).

  `pattern=None` makes the layer the identity; in `kernel_fn`, with
  `x2=None` a single pattern, or `(P1, None)`, serves both sides.

  Kernel (Du et al. 2019, Graph NTK): the layer is linear, so
  `nngp'_ab = P1_a^T nngp_ab P2_b` over the vertex pairs (likewise `ntk`,
  `cov1`, `cov2`); SPARSE computes the same sums by gathering the
  `n_edges^2` arc pairs and summing them into their heads' pairs.

  Returns:
    `Layer(init_fn, apply_fn, kernel_fn)`.
  """
  impl = enums.parse(AggregateImplementation, implementation,
                     "Aggregate(implementation")

  def layout(ndim):
    b_ax, c_ax = batch_axis % ndim, channel_axis % ndim
    spatial = [a for a in range(ndim) if a not in (b_ax, c_ax)]
    if aggregate_axis is None:
      agg = list(spatial)
    else:
      axes = [aggregate_axis] if isinstance(aggregate_axis, int) else list(
          aggregate_axis)
      agg = sorted({a % ndim for a in axes})
      bad = [a for a in agg if a not in spatial]
      if bad:
        raise PatternError(
            f"Aggregate(aggregate_axis={aggregate_axis!r}) names the batch or "
            f"channel axis ({bad}) of {ndim}-d inputs; aggregate over spatial "
            f"axes only (here {spatial}).")
    return b_ax, c_ax, spatial, agg

  def init_fn(key, input_shape):
    del key
    return input_shape, ()

  def graph(pattern, n, sizes):
    if impl is AggregateImplementation.DENSE:
      return _graph.Dense(_graph.check_dense(to_dense(pattern), n, sizes))
    return _graph.Sparse(*_graph.arcs(pattern, n, sizes))

  def apply_fn(params, inputs, *, pattern=None, **kwargs):
    """`inputs` aggregated over the graph `pattern` (None: unchanged)."""
    del params, kwargs
    if pattern is None:
      return inputs
    b_ax, _, _, agg = layout(inputs.ndim)
    sizes = tuple(inputs.shape[a] for a in agg)
    x = jnp.moveaxis(inputs, [b_ax] + agg, list(range(1 + len(agg))))
    front = x.shape
    x = x.reshape((front[0], -1) + front[1 + len(agg):])
    out = graph(pattern, inputs.shape[b_ax], sizes).apply(x)
    out = out.reshape(front)
    return jnp.moveaxis(out, list(range(1 + len(agg))), [b_ax] + agg)

  def rule(k, pattern=None, **kwargs):
    """Aggregation: `nngp'_ab = P1_a^T nngp_ab P2_b` over vertex pairs."""
    del kwargs
    p1, p2 = _graph.pair(pattern, k.x1_is_x2)
    if p1 is None:
      return k
    _, _, spatial, agg = layout(len(k.shape1))
    dims = [spatial.index(a) for a in agg]
    sizes = tuple(k.shape1[a] for a in agg)
    g1 = graph(p1, k.shape1[k.batch_axis], sizes)
    g2 = graph(p2, k.shape2[k.batch_axis], sizes)
    # Output in natural order, as NT's (its aggregation un-reverses).
    k = k.natural()
    shape = k.spatial_shape()
    out = {}
    for field, m, b in k.arrays():
      if k.diagonal_spatial:
        mat = _spatial.to_matrix(m, b, len(shape), True)
        m = _spatial.from_matrix(mat, b, shape)
      ga, gb = dict(nngp=(g1, g2), ntk=(g1, g2), cov1=(g1, g1),
                    cov2=(g2, g2))[field]
      out[field] = _graph.transform(m, b, shape, dims, ga, gb)
    return k.replace(diagonal_spatial=False, **out)

  return make_layer("Aggregate", init_fn, apply_fn, rule,
                    Requirements(batch_axis=batch_axis,
                                 channel_axis=channel_axis,
                                 diagonal_spatial=Diag.NEEDS_FULL,
                                 remask=True))
