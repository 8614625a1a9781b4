"""User-defined nonlinearities: Elementwise (given dual) and ElementwiseNumerical.

`Elementwise` takes the dual `nngp_fn(cov12, var1, var2) = E[fn(u) fn(v)]`
from the user; `ElementwiseNumerical` computes it by Gauss-Hermite
quadrature. Both get the NTK factor `E[fn'(u) fn'(v)]`, which by Price's
theorem is `d nngp_fn / d cov12`.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ntcore import Requirements, elementwise_layer, kernel_ops

# A nonlinearity with fn(0) != 0 gives masked positions a nonzero covariance;
# zero it again, as NT does for these layers.
_REMASKED = Requirements(gaussian_input=True, remask=True)

Scalar = Callable[[float], float]
Dual = Callable[[float, float, float], float]


def Elementwise(fn: Optional[Scalar] = None,
                nngp_fn: Optional[Dual] = None,
                d_nngp_fn: Optional[Dual] = None):
  """Elementwise `fn` with a user-given dual `nngp_fn` (NT's contract).

  Kernel: `nngp' = nngp_fn(nngp, var1, var2)` entry by entry (and `cov1`,
  `cov2` with their own variances); NTK factor `d_nngp_fn(nngp, var1, var2)
  = E[fn'(u) fn'(v)] = d nngp_fn / d cov12` (Price's theorem).

  Args:
    fn: the scalar nonlinearity `R -> R`, used by `apply_fn`; None makes
      `apply_fn` raise.
    nngp_fn: `nngp_fn(cov12, var1, var2) = E[fn(u) fn(v)]` for
      `(u, v) ~ N(0, [[var1, cov12], [cov12, var2]])`, on scalars; None makes
      `kernel_fn` raise.
    d_nngp_fn: `E[fn'(u) fn'(v)]` with the same arguments; None takes
      `d nngp_fn / d cov12` by autodiff (mind `jnp.where` in `nngp_fn`: its
      unselected branch's NaN gradients leak through).

  Raises:
    ValueError: if neither `fn` nor `nngp_fn` is given.
    NotImplementedError: at call time, from `apply_fn` without `fn` or from
      `kernel_fn` without `nngp_fn`.
  """
  if fn is None and nngp_fn is None:
    raise ValueError(
        "Elementwise needs fn (for the finite network), nngp_fn (for the "
        "kernel) or both; neither was given, so the layer would do nothing.")
  if nngp_fn is not None and d_nngp_fn is None:
    d_nngp_fn = jax.grad(nngp_fn)
  nngp_v = None if nngp_fn is None else jnp.vectorize(nngp_fn)
  d_nngp_v = None if d_nngp_fn is None else jnp.vectorize(d_nngp_fn)

  def dual(cov, var_a, var_b, ntk):
    cov, var_a, var_b = jnp.broadcast_arrays(cov, var_a, var_b)
    out = nngp_v(cov, var_a, var_b)
    return out, None if ntk is None else ntk * d_nngp_v(cov, var_a, var_b)

  def rule(k, **kwargs):
    """Elementwise: user dual `nngp_fn`; NTK factor `d nngp_fn / d cov12`."""
    del kwargs
    if nngp_fn is None:
      raise NotImplementedError(
          "Elementwise was built without nngp_fn, so it has no kernel. Pass "
          "nngp_fn(cov12, var1, var2) = E[fn(u) fn(v)], or use "
          "ElementwiseNumerical(fn, deg) for quadrature, or "
          "monte_carlo_kernel_fn.")
    return kernel_ops.elementwise(k, dual)

  def apply(x):
    if fn is None:
      raise NotImplementedError(
          "Elementwise was built without fn, so its apply_fn cannot run. Pass "
          "fn (the scalar nonlinearity) to use the finite network.")
    return fn(x)

  return elementwise_layer("Elementwise", apply, rule, _REMASKED)


def _sqrt0(x):
  """`sqrt(max(x, 0))` whose gradient at 0 is 0 instead of NaN."""
  pos = x > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.)), 0.)


def gauss_hermite(deg: int) -> tuple[np.ndarray, np.ndarray]:
  """Nodes and weights of the `deg`-point rule for `int exp(-t^2) g(t) dt`.

  Golub-Welsch eigenvalues, two Newton steps, and weights
  `w_i = 1 / (deg phi_(deg-1)(t_i)^2)` from the orthonormal Hermite
  polynomials `phi_k`, evaluated by their three-term recurrence with
  running rescaling. Unlike `numpy.polynomial.hermite.hermgauss` (NaN weights
  from deg ~ 370 on), outer weights underflow gracefully to 0; agrees with
  `scipy.special.roots_hermite` to ~1e-13 relative.
  """
  n = int(deg)
  if n == 1:
    return np.zeros(1), np.full(1, np.sqrt(np.pi))
  off = np.sqrt(np.arange(1, n) / 2.)
  t = np.linalg.eigvalsh(np.diag(off, 1) + np.diag(off, -1))

  def last_two(t):
    """`phi_(n-1)(t), phi_n(t)` scaled by `exp(-log_scale)`, and `log_scale`."""
    prev, cur = np.zeros_like(t), np.full_like(t, np.pi ** -0.25)
    log_scale = np.zeros_like(t)
    for k in range(n):  # a loop over the polynomial degree, not over data
      prev, cur = cur, (np.sqrt(2. / (k + 1)) * t * cur
                        - np.sqrt(k / (k + 1.)) * prev)
      big = np.abs(cur) > 1e100
      prev, cur = np.where(big, prev / 1e100, prev), np.where(big, cur / 1e100, cur)
      log_scale += big * np.log(1e100)
    return prev, cur, log_scale

  for _ in range(2):  # Newton on phi_n, with phi_n' = sqrt(2n) phi_(n-1)
    prev, cur, _ = last_two(t)
    t = t - cur / (np.sqrt(2. * n) * prev)
  prev, _, log_scale = last_two(t)
  w = np.exp(-np.log(n) - 2 * (np.log(np.abs(prev)) + log_scale))
  return (t - t[::-1]) / 2, (w + w[::-1]) / 2


def _cholesky_frame(cov, var_a, var_b):
  """`(a_i, a_j, b_i, b_j)` with `u = a_i z1 + a_j z2`, `v = b_i z1 + b_j z2`.

  Cholesky (NT's frame): `u = sqrt(q1) z1`, `v = sqrt(q2) (rho z1 +
  sqrt(1 - rho^2) z2)`, `rho = c / sqrt(q1 q2)` clipped to `[-1, 1]` (0
  where a variance is 0; there `u` or `v` is exactly 0).
  """
  prod = var_a * var_b
  rho = jnp.clip(cov / jnp.where(prod > 0, _sqrt0(prod), 1.), -1., 1.)
  sb = _sqrt0(var_b)
  return _sqrt0(var_a), 0., sb * rho, sb * _sqrt0(1. - rho ** 2)


def _symmetric_frame(cov, var_a, var_b):
  """The symmetric square root `S` of `C = [[q1, c], [c, q2]]`.

  By Cayley-Hamilton `S = (C + s I) / t`, `s = sqrt(det C)`,
  `t = sqrt(q1 + q2 + 2 s)`; `c` is first clipped to `|c| <= sqrt(q1 q2)`
  so that `C` is PSD, and `S = 0` where `t = 0` (both variances 0).
  """
  var_a, var_b = jnp.maximum(var_a, 0.), jnp.maximum(var_b, 0.)
  bound = _sqrt0(var_a * var_b)
  cov = jnp.clip(cov, -bound, bound)
  s = _sqrt0(kernel_ops.gram(cov, var_a, var_b))
  t = _sqrt0(var_a + var_b + 2 * s)
  inv_t = jnp.where(t > 0, 1. / jnp.where(t > 0, t, 1.), 0.)
  return (var_a + s) * inv_t, cov * inv_t, cov * inv_t, (var_b + s) * inv_t


_FRAMES = {"cholesky": _cholesky_frame, "symmetric": _symmetric_frame}


def quadrature_dual(fn: Scalar, deg: int, df: Optional[Scalar] = None,
                    frame: str = "cholesky"):
  """The dual of `fn` by Gauss-Hermite quadrature of degree `deg`.

  `(u, v) ~ N(0, [[q1, c], [c, q2]])` is written as a linear map of two
  independent standard normals `(z1, z2)`, and `E[g(u) h(v)] ~ sum_ij w_i
  w_j g(u_ij) h(v_ij)` with nodes `sqrt(2) t_i` and weights `w_i / sqrt(pi)`
  of the physicists' rule (`gauss_hermite`). The map (`frame`):

  * "cholesky": `u = sqrt(q1) z1`, `v = sqrt(q2) (rho z1 + sqrt(1 - rho^2)
    z2)` — NT's nodes and frame, so values agree with NT's to round-off; the
    diagonal is the 1-D rule. Not symmetric in `(q1, q2)`: swapping them
    changes the result by the quadrature error, so a batch's kernel with
    itself is symmetric only to that error (as NT's).
  * "symmetric": `(u, v) = S z` with `S` the symmetric square root of the
    covariance. Symmetric in `(u, v)`, so kernels are symmetric to round-off
    and every entry depends on its own pair only; over variances 0.2..6 and
    correlations -0.9..1 its worst error at deg 50 is 2-5x smaller than
    Cholesky's for erf, tanh, tanh' and the logistic sigmoid (it wins at
    high correlation, where the diagonal and nearby inputs lie). The
    diagonal uses the same 2-D rule, so `cov1` is `nngp`'s diagonal.

  Both keep correlation +-1 and zero variances finite (gradients too).

  Returns:
    `(dual, diag)` for `kernel_ops.elementwise`: `dual(cov, var_a, var_b,
    ntk)` and `diag(var) = E[fn(u)^2]`.
  """
  if int(deg) != deg or deg < 1:
    raise ValueError(f"deg must be a positive integer, got {deg!r}.")
  if frame not in _FRAMES:
    raise ValueError(f"frame must be one of {sorted(_FRAMES)}, got {frame!r}.")
  t, w = gauss_hermite(int(deg))
  nodes_np = np.sqrt(2.) * t
  weights_np = w / np.sqrt(np.pi)
  if df is None:
    df = jnp.vectorize(jax.grad(fn))

  def dual(cov, var_a, var_b, ntk):
    dtype = jnp.result_type(cov)
    nodes = jnp.asarray(nodes_np, dtype)
    weights = jnp.asarray(weights_np, dtype)
    shape = cov.shape
    # u_ij = a_i t_i + a_j t_j, v_ij = b_i t_i + b_j t_j; j (inner) goes last.
    a_i, a_j, b_i, b_j = (jnp.broadcast_to(m, shape)[..., None] for m in
                          _FRAMES[frame](cov, var_a, var_b))
    inner = nodes.reshape((1,) * cov.ndim + (-1,))
    funcs = (fn,) if ntk is None else (fn, df)

    def step(acc, node_weight):
      t_i, w_i = node_weight
      v = b_i * t_i + b_j * inner
      if frame == "cholesky":  # u does not depend on j: deg calls, not deg^2
        u = a_i[..., 0] * t_i
        return tuple(a + w_i * f(u) * (f(v) @ weights)
                     for a, f in zip(acc, funcs)), None
      u = a_i * t_i + a_j * inner
      return tuple(a + w_i * ((f(u) * f(v)) @ weights)
                   for a, f in zip(acc, funcs)), None

    # Scan over the outer nodes: memory stays at deg x the kernel's size.
    init = tuple(jnp.zeros(shape, dtype) for _ in funcs)
    out, _ = lax.scan(step, init, (nodes, weights))
    return out[0], None if ntk is None else ntk * out[1]

  def diag(var):
    if frame == "symmetric":
      return dual(var, var, var, None)[0]
    dtype = jnp.result_type(var)
    nodes = jnp.asarray(nodes_np, dtype).reshape((1,) * var.ndim + (-1,))
    weights = jnp.asarray(weights_np, dtype)
    return fn(_sqrt0(var)[..., None] * nodes) ** 2 @ weights

  return dual, diag


def quadrature_layer(name: str, fn: Scalar, deg: int,
                     df: Optional[Scalar] = None, frame: str = "cholesky"):
  """An elementwise layer `fn` whose kernel is `quadrature_dual(...)`'s."""
  dual, diag = quadrature_dual(fn, deg, df, frame)

  def rule(k, **kwargs):
    del kwargs
    return kernel_ops.elementwise(k, dual, diag)

  rule.__doc__ = (f"{name}: `E[fn(u) fn(v)]` by {deg}x{deg} Gauss-Hermite "
                  f"quadrature ({frame} frame).")
  return elementwise_layer(name, fn, rule, _REMASKED)


def ElementwiseNumerical(fn: Scalar, deg: int, df: Optional[Scalar] = None):
  """Elementwise `fn` with its kernel by Gauss-Hermite quadrature.

  Kernel: `E[fn(u) fn(v)]` and NTK factor `E[fn'(u) fn'(v)]` as a `deg x deg`
  Gauss-Hermite sum in the Cholesky frame `u = sqrt(q1) z1`,
  `v = sqrt(q2) (rho z1 + sqrt(1 - rho^2) z2)` (see `quadrature_dual`): the
  same numbers as NT, including NT's asymmetry: a batch's kernel with itself
  is symmetric only up to the quadrature error (the named layers `Tanh`,
  `Sigmoid`, ... use a symmetric frame instead). The error shrinks
  quickly with `deg` for smooth `fn` (geometrically for entire functions,
  more slowly the closer `fn`'s complex singularities lie to the real axis,
  relative to `sqrt(var)`); for kinks (ReLU, Abs) it is slow, use a closed
  form or Monte Carlo there. Cost: `deg^2` evaluations of `fn` per kernel
  entry, `deg` times the kernel's memory.

  Args:
    fn: the scalar nonlinearity; must work on arrays (jnp operations).
    deg: the number of quadrature nodes per dimension, >= 1 (NT suggests 25
      as a start for smooth functions).
    df: the derivative of `fn`; None takes it by autodiff.
  """
  return quadrature_layer("ElementwiseNumerical", fn, deg, df)
