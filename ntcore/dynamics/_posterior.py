"""`Posterior`: the dense GP posterior of `gp_inference`, by Cholesky.

The formulas are those of `inference.py`'s docstring; `_cg_posterior.py`
computes the same ones by conjugate gradients.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from ntcore.dynamics import _kernels
from ntcore.dynamics._axes import Layout, make_2d, zip_2d
from ntcore.dynamics._linalg import Regularizer, cholesky, eager
from ntcore.errors import KernelRequirementError, ShapeError

Array = jnp.ndarray


class Gaussian(NamedTuple):
  """A `(mean, covariance)` pair.

  Attributes:
    mean: shaped like the outputs, e.g. `(n_test, C)`.
    covariance: shaped like the kernel, e.g. `(n_test, n_test)`.
  """

  mean: Array
  covariance: Array


class Posterior:
  """GP posteriors given train-train kernels, with their factorizations cached.

  Args:
    train: `train(g)` is the train-train `g` kernel (`"nngp"`, `"ntk"`).
    distinct: whether `train` gives a distinct NNGP and NTK (the NTK
      covariance needs both).
    y_train: targets.
    layout: `y_train`'s layout.
    reg: the diagonal regularizer of the inverted kernels.
    name: the user's name of the train-train kernel, for messages.
  """

  def __init__(self, train: Callable[[str], Array], distinct: bool,
               y_train: Array, layout: Layout, reg: Regularizer, name: str):
    self.train, self.distinct, self.name = train, distinct, name
    self.y_train, self.layout, self.reg = y_train, layout, reg
    self.factors: dict[str, Array] = {}
    self.inv_y: dict[str, Array] = {}

  def factor(self, g: str) -> Array:
    """The Cholesky factor of the `g` kernel, computed once."""
    if g not in self.factors:
      k = self.train(g)
      self.layout.check_kernel(k, f"{self.name}.{g}", square=True)
      self.factors[g] = cholesky(k, self.reg, f"{self.name}.{g}",
                                 f"the {g} posterior")
    return self.factors[g]

  def k_inv_y(self, g: str) -> Array:
    """`K^{-1} Y` as a `(P, Q)` matrix, computed once."""
    if g not in self.inv_y:
      self.inv_y[g] = eager(_solve_y, self.factor(g), self.y_train,
                            layout=self.layout)
    return self.inv_y[g]

  def mean(self, kind: str, k_td: Array, test_shape) -> Array:
    """`K_* (K + reg)^{-1} Y` in the output layout."""
    return _mean(k_td, self.k_inv_y(kind), layout=self.layout,
                 test_shape=test_shape)

  def gp_cov(self, kind: str, k_td: Array, k_tt: Array, test_shape) -> Array:
    """`K_** - K_* (K + reg)^{-1} K_*^T` of the `kind` kernel."""
    return _gp_cov(self.factor(kind), k_td, k_tt, test_shape=test_shape)

  def ntk_cov(self, ntk_td: Array, nngp_td: Array, nngp_tt: Array,
              test_shape) -> Array:
    """Eq. 16, the covariance of the ensemble trained to convergence."""
    return _ntk_cov(self.factor("ntk"), ntk_td, nngp_td, self.train("nngp"),
                    nngp_tt, test_shape=test_shape)

  def __call__(self, names: tuple[str, ...], k_test_train: Any,
               k_test_test: Any) -> dict[str, Any]:
    """`{g: mean or Gaussian}` for each of `names`, as `gp_inference` says."""
    out = {}
    for g in names:
      kind = "ntk" if g == "ntkgp" else g
      if k_test_train is None:  # train set: interpolated exactly, as in NT
        k_dd = self.train(kind)
        mean = self.y_train.astype(jnp.result_type(self.y_train, k_dd.dtype))
        out[g] = (mean if k_test_test is None else
                  Gaussian(mean, jnp.zeros(k_dd.shape, k_dd.dtype)))
        continue
      k_td = _kernels.kernel_attr(k_test_train, kind, "k_test_train")
      test_shape = self.layout.check_kernel(k_td, "k_test_train",
                                            square=False)
      mean = self.mean(kind, k_td, test_shape)
      if k_test_test is None:
        out[g] = mean
        continue
      prior = "ntk" if g == "ntkgp" else "nngp"
      k_tt = _kernels.kernel_attr(k_test_test, prior, "k_test_test")
      _check_test_test(k_tt, test_shape)
      if g == "ntk":
        if not (self.distinct and _kernels.has_both(k_test_train)):
          raise KernelRequirementError(NTK_COV_NEEDS_BOTH)
        cov = self.ntk_cov(k_td, _kernels.kernel_attr(k_test_train, "nngp",
                                                      ""), k_tt, test_shape)
      else:
        cov = self.gp_cov(kind, k_td, k_tt, test_shape)
      out[g] = Gaussian(mean, cov)
    return out


NTK_COV_NEEDS_BOTH = (
    "The NTK posterior covariance (get='ntk' with k_test_test) needs both the "
    "NNGP and the NTK of k_train_train and k_test_train: pass ntcore.Kernel "
    "objects or namedtuples with nngp and ntk, e.g. kernel_fn(x1, x2, "
    "('nngp', 'ntk')).")


@functools.partial(jax.jit, static_argnames=("layout",))
def _solve_y(factor: Array, y_train: Array, *, layout: Layout) -> Array:
  y2 = layout.to_2d(y_train).astype(factor.dtype)
  return jsl.cho_solve((factor, True), y2)


@functools.partial(jax.jit, static_argnames=("layout", "test_shape"))
def _mean(k_td: Array, inv_y: Array, *, layout: Layout, test_shape) -> Array:
  return layout.from_2d(make_2d(k_td) @ inv_y, (), test_shape)


@functools.partial(jax.jit, static_argnames=("test_shape",))
def _gp_cov(factor: Array, k_td: Array, k_tt: Array, *, test_shape) -> Array:
  """`K_** - K_* K^{-1} K_*^T`, as `K_** - |L^{-1} K_*^T|^2` so it stays PSD."""
  half = jsl.solve_triangular(factor, make_2d(k_td).T, lower=True)
  return _finish(make_2d(k_tt), -half.T @ half, test_shape)


@functools.partial(jax.jit, static_argnames=("test_shape",))
def _ntk_cov(factor: Array, ntk_td: Array, nngp_td: Array, nngp_dd: Array,
             nngp_tt: Array, *, test_shape) -> Array:
  """Eq. 16: `K_** + A K A^T - (A K_*^T + h.c.)`, `A = Θ_* Θ^{-1}`."""
  ntk_td = make_2d(ntk_td)
  a_t = jsl.cho_solve((factor, True), ntk_td.T)  # Θ^{-1} Θ_*^T, (n, n_test)
  cross = ntk_td @ jsl.cho_solve((factor, True), make_2d(nngp_td).T)
  cov = a_t.T @ make_2d(nngp_dd) @ a_t - cross - cross.T
  return _finish(make_2d(nngp_tt), cov, test_shape)


def _finish(k_tt: Array, cov: Array, test_shape) -> Array:
  """`k_tt + cov`, symmetrized, in the kernel layout."""
  return zip_2d(k_tt + (cov + cov.T) / 2, (), test_shape)


def _check_test_test(k_tt: Array, test_shape: tuple[int, ...]) -> None:
  want = tuple(s for s in test_shape for _ in range(2))
  if tuple(k_tt.shape) != want:
    raise ShapeError(f"k_test_test has shape {tuple(k_tt.shape)}, but "
                     f"k_test_train's test axes {test_shape} need {want}.")
