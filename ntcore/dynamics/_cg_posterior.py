"""GP posteriors by conjugate gradients: `Posterior` without a factorization.

The same formulas as `inference.Posterior` (see `inference.py`), with every
`(K + reg)^{-1} B` a CG solve (`cg.CGSolver`) against a `KernelOperator`:

* mean: `K_* alpha`, `alpha = (K + reg)^{-1} Y` solved once per kernel, all
  `Q` target columns at once, and cached;
* nngp / ntkgp covariance: `K_** - K_* Z` with `Z = (K + reg)^{-1} K_*^T`,
  one solve whose right-hand sides are the test points of the call — exact
  to the CG tolerance, not an approximation; its cost is `n_test` columns
  per kernel pass, so call `predict_fn` test block by test block for many
  test points;
* ntk covariance (eq. 16): `A^T = (Θ + reg)^{-1} Θ_*^T` by one solve, then
  `A K A^T` by one pass over the NNGP operator and the cross term
  `A K_*^T`.

The solves need concrete values: the mean also works when `predict_fn` is
jitted (`alpha` is computed eagerly from the closed-over training data), a
covariance does not.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.dynamics import _kernels
from ntcore.dynamics._axes import Layout, make_2d
from ntcore.dynamics._linalg import Regularizer, is_concrete
from ntcore.dynamics.cg import CG, CGSolver, SolverArg, resolve
from ntcore.dynamics._posterior import Posterior, _finish
from ntcore.dynamics.operator import KernelOperator
from ntcore.errors import PredictArgumentError

Array = jnp.ndarray

TRACED = (
    "solver='cg' runs its iterations on concrete values, but {what} is "
    "traced (called under jax.jit, vmap or grad). Call it outside the "
    "transformation, or use solver='dense'."
)


def as_operator(k: Any) -> KernelOperator:
  """`k` if a `KernelOperator`, else the array it is, wrapped.

  Raises:
    PredictArgumentError: `k` is traced (CG needs its values).
  """
  if _kernels.is_operator(k):
    return k
  if not is_concrete(k):
    raise PredictArgumentError(TRACED.format(what="the training kernel"))
  return KernelOperator.from_array(k)


def as_operators(k: Any) -> Any:
  """The kernel argument `k` with its arrays made `KernelOperator`s."""
  if _kernels.is_array(k) or _kernels.is_operator(k):
    return as_operator(k)
  return _kernels.Pair(*(None if v is None else as_operator(v) for v in (
      getattr(k, "nngp", None), getattr(k, "ntk", None))))


def has_operator(k: Any) -> bool:
  """Whether the kernel argument `k` is or holds a `KernelOperator`."""
  return _kernels.is_operator(k) or any(
      _kernels.is_operator(getattr(k, g, None)) for g in ("nngp", "ntk"))


def choose(solver: SolverArg, k: Any, size: int, where: str
           ) -> tuple[Optional[CG], Any]:
  """`(CG options or None for dense, k)` for `solver` on the kernel `k`.

  A `KernelOperator` makes `solver=None` mean CG; a dense solver asked for
  explicitly assembles it (`to_array`, `P^2` memory).
  """
  if solver is None and has_operator(k):
    solver = "cg"
  options = resolve(solver, size, where)
  if options is None and has_operator(k):
    k = (k.to_array() if _kernels.is_operator(k) else _kernels.Pair(*(
        v.to_array() if _kernels.is_operator(v) else v
        for v in (getattr(k, "nngp", None), getattr(k, "ntk", None)))))
  return options, k


def regularizer_amount(op: KernelOperator, reg: Regularizer) -> float:
  """`mu`, the absolute amount `reg` adds to `op`'s diagonal."""
  if reg.absolute:
    return float(reg.diag_reg)
  return float(reg.diag_reg) * float(np.mean(op.diagonal()))


def host(fn: Callable, *args) -> np.ndarray:
  """`fn(*args)` of concrete arguments as a float64 NumPy array, computed
  now even while a `jit` trace is open (the training data closed over by a
  jitted `predict_fn`)."""
  with jax.ensure_compile_time_eval():
    return np.asarray(fn(*args), np.float64)


def product(k_td: Array, alpha: np.ndarray, dtype) -> Array:
  """`make_2d(k_td) @ alpha` in `dtype`: summed in float64 when `k_td` is
  concrete, in `dtype` by JAX under a trace."""
  if is_concrete(k_td):
    return jnp.asarray((host(make_2d, k_td) @ alpha).astype(dtype))
  return make_2d(k_td) @ jnp.asarray(alpha.astype(dtype))


class CGSolvers:
  """One `CGSolver` per kernel kind, made on first use, sharing `records`."""

  def __init__(self, train: Callable[[str], Any], reg: Regularizer,
               options: CG, name: str, check: Callable[[Any, str], None]):
    self.train, self.reg, self.options, self.name = train, reg, options, name
    self.check = check
    self.records: list = []
    self._solvers: dict[str, CGSolver] = {}

  def __call__(self, g: str) -> CGSolver:
    if g not in self._solvers:
      k = self.train(g)
      self.check(k, f"{self.name}.{g}")
      if not is_concrete(k):
        raise PredictArgumentError(TRACED.format(what=f"{self.name}.{g}"))
      op = as_operator(k)
      self._solvers[g] = CGSolver(op, regularizer_amount(op, self.reg),
                                  self.options, self.reg.diag_reg,
                                  self.records)
    return self._solvers[g]


class CGPosterior(Posterior):
  """`Posterior` whose solves are preconditioned conjugate gradients.

  Args: as `Posterior`, plus `options`, the `CG` options. `records` holds
  a `CGRecord` per solve, in order.
  """

  def __init__(self, train, distinct: bool, y_train: Array, layout: Layout,
               reg: Regularizer, name: str, options: CG):
    super().__init__(train, distinct, y_train, layout, reg, name)
    self.solvers = CGSolvers(
        train, reg, options, name,
        lambda k, what: layout.check_kernel(k, what, square=True))
    self.records = self.solvers.records

  def k_inv_y(self, g: str) -> np.ndarray:
    """`(K + reg)^{-1} Y`, `(P, Q)` float64, solved once."""
    if g not in self.inv_y:
      if not is_concrete(self.y_train):
        raise PredictArgumentError(TRACED.format(what="y_train"))
      self.inv_y[g] = self.solvers(g).solve(
          host(self.layout.to_2d, self.y_train), f"{g}: K^-1 y_train")
    return self.inv_y[g]

  def mean(self, kind: str, k_td: Array, test_shape) -> Array:
    alpha = self.k_inv_y(kind)
    dtype = jnp.result_type(k_td.dtype, self.solvers(kind).op.dtype)
    return self.layout.from_2d(product(k_td, alpha, dtype), (), test_shape)

  def _solve_test(self, g: str, k_td: Array, what: str):
    """`(solver, K_*^T as (P, n_test) float64, (K + reg)^{-1} K_*^T)`."""
    if not is_concrete(k_td):
      raise PredictArgumentError(TRACED.format(what="k_test_train"))
    solver = self.solvers(g)
    rhs = host(make_2d, k_td).T
    return solver, rhs, solver.solve(rhs, what)

  def gp_cov(self, kind: str, k_td: Array, k_tt: Array, test_shape) -> Array:
    solver, rhs, z = self._solve_test(kind, k_td, f"{kind}: covariance")
    cov = -(rhs.T @ z)
    return self._finish(solver, k_tt, cov, test_shape)

  def ntk_cov(self, ntk_td: Array, nngp_td: Array, nngp_tt: Array,
              test_shape) -> Array:
    solver, _, a_t = self._solve_test("ntk", ntk_td, "ntk: covariance")
    nngp = as_operator(self.train("nngp"))
    cross = a_t.T @ host(make_2d, nngp_td).T
    cov = a_t.T @ nngp.matmul(a_t) - cross - cross.T
    return self._finish(solver, nngp_tt, cov, test_shape)

  def _finish(self, solver: CGSolver, k_tt: Array, cov: np.ndarray,
              test_shape) -> Array:
    dtype = jnp.result_type(k_tt.dtype, solver.op.dtype)
    return _finish(make_2d(k_tt), jnp.asarray(cov.astype(dtype)), test_shape)
