"""Building blocks for kernel rules that plugins share.

The main one is `elementwise`: the rule of any entrywise nonlinearity
`phi`, given its dual — a function of one covariance entry and the two
variances it pairs. It handles every block layout (diagonal or full batch,
diagonal or full spatial) so that a nonlinearity author writes the math once.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax.numpy as jnp

from ntcore.kernel import Kernel

Array = jnp.ndarray
# fn(cov, var_a, var_b, ntk) -> (cov', ntk'), all broadcastable to cov's shape.
DualFn = Callable[[Array, Array, Array, Optional[Array]],
                  tuple[Array, Optional[Array]]]


def _diagonal_pairs(x: Array, start: int, n_pairs: int) -> Array:
  """Takes the diagonal of each interleaved axis pair from axis `start` on."""
  for _ in range(n_pairs):
    x = jnp.diagonal(x, axis1=start, axis2=start + 1)
    x = jnp.moveaxis(x, -1, start)
    start += 1
  return x


def variances(cov: Array, diagonal_batch: bool, diagonal_spatial: bool,
              n_spatial: int) -> Array:
  """Per-example, per-position variances `(n, <spatial>)` from `cov1`/`cov2`."""
  if not diagonal_batch:
    cov = _diagonal_pairs(cov, 0, 1)
  if not diagonal_spatial:
    cov = _diagonal_pairs(cov, 1, n_spatial)
  return cov


def pair(var_a: Array, var_b: Array, diagonal_spatial: bool,
         one_batch_axis: bool) -> tuple[Array, Array]:
  """Broadcasts two variance arrays `(n, <spatial>)` to a covariance layout.

  Returns `(a, b)` such that `a * b` has the layout of the covariance between
  the two batches: `(n_a, n_b, ...)`, or `(n, ...)` with `one_batch_axis`
  (the diagonal-batch `cov1`); spatial axes interleaved unless
  `diagonal_spatial`.
  """
  d = var_a.ndim - 1
  sp_a, sp_b = var_a.shape[1:], var_b.shape[1:]
  if diagonal_spatial or d == 0:
    if one_batch_axis:
      return var_a, var_b
    return var_a[:, None], var_b[None, :]
  inter_a = sum(((s, 1) for s in sp_a), ())
  inter_b = sum(((1, s) for s in sp_b), ())
  if one_batch_axis:
    return (var_a.reshape(var_a.shape[:1] + inter_a),
            var_b.reshape(var_b.shape[:1] + inter_b))
  return (var_a.reshape(var_a.shape[:1] + (1,) + inter_a),
          var_b.reshape((1,) + var_b.shape[:1] + inter_b))


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
  a, b = pair(var1, var2, ds, one_batch_axis=False)
  nngp, ntk = fn(k.nngp, a, b, k.ntk)

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


def set_batch_diagonal(mat: Array, diag: Array) -> Array:
  """`mat[i, i, ...] = diag[i, ...]` for `mat: (n, n, ...)`, `diag: (n, ...)`."""
  idx = jnp.arange(mat.shape[0])
  return mat.at[idx, idx].set(diag)


def safe_sqrt(x: Array) -> Array:
  """`sqrt(max(x, 0))`: clips round-off negatives of variances to zero."""
  return jnp.sqrt(jnp.maximum(x, 0))


def reverse_spatial(k: Kernel) -> Kernel:
  """`k` with its spatial axis groups stored in the other order.

  Flips `is_reversed` and transposes every array to match (NT's
  `Kernel.reverse`). Convolutions over full spatial covariances leave their
  output reversed, as NT does; layers combining several kernels (FanInSum)
  use this to bring them to one order.
  """
  n = k.n_spatial
  group = 1 if k.diagonal_spatial else 2

  def rev(m, batch_ndim):
    if m is None or m.ndim == 0 or n < 2:
      return m
    order = list(range(batch_ndim)) + [
        batch_ndim + group * i + j for i in reversed(range(n))
        for j in range(group)]
    return jnp.transpose(m, order)

  cb = 1 if k.diagonal_batch else 2
  return k.replace(nngp=rev(k.nngp, 2), ntk=rev(k.ntk, 2),
                   cov1=rev(k.cov1, cb), cov2=rev(k.cov2, cb),
                   is_reversed=not k.is_reversed)
