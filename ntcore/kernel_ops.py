"""Building blocks for kernel rules that plugins share.

Layout helpers that work on single arrays are re-exported here from the
modules behind `Kernel`'s layout methods (`variances`, `pair`,
`canonical_index`, `selects_all`, `index_mask`, `index_axes`). The main
building block is `elementwise`: the rule of any entrywise nonlinearity
`phi`, given its dual — a function of one covariance entry and the two
variances it pairs. It handles every block layout (diagonal or full batch,
diagonal or full spatial) so that a nonlinearity author writes the math once.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from ntcore import _kernel_index, _layout
from ntcore.kernel import Kernel

Array = jnp.ndarray
# fn(cov, var_a, var_b, ntk) -> (cov', ntk'), all broadcastable to cov's shape.
DualFn = Callable[[Array, Array, Array, Optional[Array]],
                  tuple[Array, Optional[Array]]]


variances = _layout.variances
pair = _layout.pair
canonical_index = _kernel_index.canonical_index
selects_all = _kernel_index.selects_all
index_mask = _kernel_index.index_mask
index_axes = _kernel_index.index_axes


def elementwise(k: Kernel, fn: DualFn,
                diag_fn: Optional[Callable[[Array], Array]] = None) -> Kernel:
  """The kernel of `phi(z)` applied entrywise to Gaussian `z` with kernel `k`.

  Args:
    k: the input kernel (Gaussian pre-activations).
    fn: `fn(cov, var_a, var_b, ntk) -> (cov', ntk')`: for
      `(u, v) ~ N(0, [[var_a, cov], [cov, var_b]])`, `cov' = E[phi(u) phi(v)]`
      and `ntk' = ntk * E[phi'(u) phi'(v)]` (ntk may be None).
    diag_fn: `var -> E[phi(u)^2]` for `u ~ N(0, var)`, used for the
      per-example variances when they are stored alone (diagonal batch and
      spatial). Defaults to `fn(var, var, var, None)[0]`.

  Returns:
    The output kernel; it is not Gaussian.
  """
  n_sp = k.n_spatial
  ds, db = k.diagonal_spatial, k.diagonal_batch
  var1 = variances(k.cov1, db, ds, n_sp)
  var2 = var1 if k.cov2 is None else variances(k.cov2, db, ds, n_sp)
  if k.x1_is_x2 and db:
    # The same-example entries of nngp and the variances in cov1 hold the
    # same number, but were computed by different fused loops, which may
    # round it differently (one of them through an FMA). At correlation 1 a
    # one-ulp gap is amplified to sqrt(eps) by the duals of ReLU-like maps
    # (the NTK's factor E[phi'(u) phi'(v)] has an infinite slope there), so
    # the dual pairs nngp with its own diagonal: `c == q1 == q2` there bit
    # for bit (`gram` is 0). A gather of n entries, not a pass over n x n.
    same = jnp.moveaxis(jnp.diagonal(k.nngp, axis1=0, axis2=1), -1, 0)
    same = variances(same, db, ds, n_sp)
    a, b = pair(same, same, ds, one_batch_axis=False)
  else:
    a, b = pair(var1, var2, ds, one_batch_axis=False)
  nngp, ntk = fn(k.nngp, a, b, k.ntk)
  ntk = stored(ntk)

  def own(cov, var):
    if cov is None:
      return None
    if db and (ds or n_sp == 0):
      return diag_fn(cov) if diag_fn is not None else fn(cov, cov, cov, None)[0]
    va, vb = pair(var, var, ds, one_batch_axis=db)
    return fn(cov, va, vb, None)[0]

  cov1 = own(k.cov1, var1)
  if k.x1_is_x2:
    # The same-example entries of nngp are the variances in cov1: take them
    # from the diagonal formula, which is exact where the general one loses
    # half the digits (duals of ReLU-like maps have a square-root
    # singularity at correlation 1, so round-off eps becomes sqrt(eps)).
    nngp = cov1 if not db else set_batch_diagonal(nngp, cov1)
  return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=own(k.cov2, var2),
                   is_gaussian=False)


def stored(x: Optional[Array]) -> Optional[Array]:
  """`x`, written to memory here rather than fused into its consumers.

  A nonlinearity's NTK, `ntk' = ntk * E[phi'(u) phi'(v)]`, has one user,
  the next layer, so XLA fuses the NTK recursion of a whole network into
  one loop at its end, which reads every layer's factor and NNGP and keeps
  them all live until then: 19 N x N arrays of temporaries in a 10-layer
  fully-connected network, 80 MB instead of 305 MB when each layer's NTK
  is stored (and 2x faster, the traffic being the same or less). XLA fuses
  across `optimization_barrier` on CPU, but not into a scatter's operand:
  rewriting one entry with itself is the cheapest such barrier.
  """
  if x is None or not x.ndim:
    return x
  first = (0,) * x.ndim
  return x.at[first].set(x[first])


def set_batch_diagonal(mat: Array, diag: Array) -> Array:
  """`mat[i, i, ...] = diag[i, ...]` for `mat: (n, n, ...)`, `diag: (n, ...)`.

  A scatter: an iota-mask `where` fuses into the loops that read `mat`,
  but XLA then recomputes their producers per consumer (the FC workload's
  program went from 2.5 to 10.6 GFLOP).
  """
  idx = jnp.arange(mat.shape[0])
  return mat.at[idx, idx].set(diag)


@jax.custom_jvp
def gram(cov: Array, var_a: Array, var_b: Array) -> Array:
  """`q1 q2 - c^2`, the Gram determinant of two inputs, with one guarantee:
  it is exactly 0 where `c == q1 == q2` bit for bit (the same example twice).

  Written `q1 * q2 - c * c` alone, it is not: XLA's CPU backend contracts a
  product and a sum into one fused multiply-add, `fma(q1, q2, -(c * c))`,
  whose result is the rounding error of `c * c`, about `eps c^2`, not 0.
  Duals of ReLU-like maps take its square root, so that error becomes
  `sqrt(eps)` ~ 1e-8 on the NTK diagonal, and whether a program is fused
  this way depends on what else is in it. So those entries are selected
  to be 0, and the derivatives are those of `q1 q2 - c^2` everywhere
  (`d = q2 dq1 + q1 dq2 - 2 c dc`), so that second derivatives at the
  same example survive.
  """
  same = (var_a == cov) & (var_b == cov)
  return jnp.where(same, 0, var_a * var_b - cov * cov)


@gram.defjvp
def _gram_jvp(primals, tangents):
  cov, var_a, var_b = primals
  d_cov, d_a, d_b = tangents
  return (gram(cov, var_a, var_b),
          var_b * d_a + var_a * d_b - 2 * cov * d_cov)


def safe_sqrt(x: Array) -> Array:
  """`sqrt(max(x, 0))`: clips round-off negatives of variances to zero."""
  return jnp.sqrt(jnp.maximum(x, 0))


reverse_spatial = _layout.reverse
"""`k` with its spatial groups stored in the other order (`Kernel.reverse`)."""
