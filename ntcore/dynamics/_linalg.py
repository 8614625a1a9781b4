"""Factorizations of a train-train kernel, checked in the working precision.

Two factorizations, each computed once per kernel and reused:

* `Spectrum` (`eigh`) for gradient-descent dynamics: every function of
  time is a function of the eigenvalues (see `_spectral.py`).
* `cholesky` for GP inference, the cheaper factorization when only
  `K^{-1}` is needed.

Both are computed eagerly (see `eager`), so a kernel closed over by a
`predict_fn` is factorized once, concretely, even when the user jits that
`predict_fn`. With concrete values the kernel is checked eagerly: a kernel
that is not positive semi-definite beyond round-off, or singular where an
inverse is needed, raises `SingularKernelError` naming `diag_reg` and
float64. A kernel that is itself traced (the whole pipeline under one `jit`)
cannot be checked; see `Spectrum` and `cholesky` for what happens then.

Round-off level: an eigenvalue `|lam| <= n * eps * lam_max` (the rank
tolerance of `numpy.linalg.matrix_rank`) is indistinguishable from 0 in the
working precision; `Spectrum` sets such eigenvalues to exactly 0.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.dynamics._axes import make_2d
from ntcore.errors import SingularKernelError

Array = jnp.ndarray

NOT_PSD = (
    "{name} is not positive semi-definite in {dtype}: its smallest "
    "eigenvalue{reg_note} is {lam_min:.3g}, below the round-off level "
    "-{tol:.3g} (= {n} x eps x largest eigenvalue {lam_max:.3g}). Kernels lose "
    "positive-definiteness to round-off with deep networks, many or nearly "
    "identical inputs, or float32. {fix}"
)

SINGULAR = (
    "{name} is singular in {dtype}: {n_null} of its {n} eigenvalues{reg_note} "
    "are at or below round-off ({tol:.3g} = {n} x eps x largest eigenvalue "
    "{lam_max:.3g}), so {what}, which solves against the kernel, is not "
    "defined. {fix}"
)

NEARLY_SINGULAR = (
    "{name} is nearly singular in {dtype}: its Cholesky factorization"
    "{reg_note} breaks down (a pivot at round-off level; smallest eigenvalue "
    "{lam_min:.3g}, largest {lam_max:.3g}), so {what}, which solves against "
    "the kernel, is not reliable. {fix}"
)

FIX = (
    "Add a diagonal regularizer, e.g. diag_reg={suggest:.0e} ({units}; now "
    "{diag_reg}){precision}"
)

TO_FLOAT64 = (
    ", or compute the kernel in float64 (jax.config.update('jax_enable_x64', "
    "True) before creating any array)."
)

IN_FLOAT64 = (
    ". The kernel is float64 already, so the defect is beyond round-off "
    "(repeated training inputs, say, or an error in the kernel)."
)


def is_concrete(*xs) -> bool:
  """Whether all of `xs` hold values (no `jit`/`vmap` tracer among them)."""
  return not any(isinstance(x, jax.core.Tracer)
                 for x in jax.tree_util.tree_leaves(xs))


def eager(fn, *args, **kwargs):
  """`fn(*args, **kwargs)`, computed now if the arguments hold values.

  Inside a `jit` trace, a computation on closed-over concrete values would
  be staged into the trace; redoing it under `ensure_compile_time_eval`
  yields values that can be checked and cached across calls. (Outside any
  trace the first call already does, and is faster: under that context JAX
  evaluates each constant subexpression on its own.)
  """
  out = fn(*args, **kwargs)
  if is_concrete(args, kwargs) and not is_concrete(out):
    with jax.ensure_compile_time_eval():
      out = fn(*args, **kwargs)
  return out


def as_float(k: Array) -> Array:
  """`k` as a floating-point array (integer kernels are promoted)."""
  k = jnp.asarray(k)
  if not jnp.issubdtype(k.dtype, jnp.inexact):
    k = k.astype(jnp.result_type(float))
  return k


@dataclasses.dataclass(frozen=True)
class Regularizer:
  """`diag_reg` and `diag_reg_absolute_scale`, as the user gave them."""

  diag_reg: float = 0.
  absolute: bool = False

  def amount(self, k2: Array) -> tuple[Array, Array]:
    """`(amount added to the diagonal, mean diagonal of k2)`."""
    # The diagonal's sum: `jnp.trace` masks the whole matrix, which XLA:CPU
    # writes out before reducing it (one more pass over an n x n array).
    mean_diag = jnp.sum(jnp.diagonal(k2)) / max(k2.shape[0], 1)
    return (self.diag_reg if self.absolute else self.diag_reg * mean_diag,
            mean_diag)

  def apply(self, k2: Array) -> tuple[Array, Array]:
    """`(k2 + amount * I, mean diagonal of k2)` for the square `k2`."""
    amount, mean_diag = self.amount(k2)
    return k2 + amount * jnp.eye(k2.shape[0], dtype=k2.dtype), mean_diag


@dataclasses.dataclass(frozen=True)
class _Facts:
  """What the error messages report about a factorized kernel."""

  name: str
  reg: Regularizer
  dtype: str
  n: int
  tol: float
  lam_min: float
  lam_max: float
  mean_diag: float

  def fix(self) -> str:
    """A `diag_reg` that lifts every eigenvalue well above round-off.

    At least sqrt(eps) of the scale: a smaller regularizer leaves a
    condition number that swamps the solution in round-off.
    """
    relative = not self.reg.absolute
    if relative and self.mean_diag == 0:
      return ("Its diagonal is zero, so no relative diag_reg can help: check "
              "the kernel, or pass diag_reg_absolute_scale=True.")
    scale = abs(self.mean_diag) if relative else 1.
    eps = float(np.finfo(self.dtype).eps)
    amount = self.reg.diag_reg * (self.mean_diag if relative else 1.)
    need = max(max(0., -self.lam_min) + amount + 10 * self.tol,
               eps ** 0.5 * max(abs(self.lam_max), 1e-300)) / scale
    power = 10. ** math.floor(math.log10(need))
    suggest = math.ceil(need / power) * power  # one digit, rounded up
    units = ("in units of the mean diagonal" if relative else
             "absolute, as diag_reg_absolute_scale=True")
    precision = IN_FLOAT64 if self.dtype == "float64" else TO_FLOAT64
    return FIX.format(suggest=suggest, units=units, diag_reg=self.reg.diag_reg,
                      precision=precision)

  def message(self, template: str, **extra) -> str:
    reg_note = (f" (after adding diag_reg={self.reg.diag_reg})"
                if self.reg.diag_reg else "")
    return template.format(
        name=self.name, dtype=self.dtype, n=self.n, tol=self.tol,
        lam_min=self.lam_min, lam_max=self.lam_max, reg_note=reg_note,
        fix=self.fix(), **extra)


@dataclasses.dataclass(frozen=True)
class Spectrum:
  """`K + reg * I = vecs @ diag(lam) @ vecs.T`, cleaned of round-off.

  Attributes:
    lam: `(P,)` eigenvalues, ascending; those within round-off of 0 (and,
      when traced, negative ones, as in NT) are exactly 0.
    vecs: `(P, P)` orthonormal eigenvectors, as columns.
    n_null: how many eigenvalues are 0; None when the kernel is traced.
  """

  lam: Array
  vecs: Array
  n_null: Optional[int]
  facts: Optional[_Facts]

  def require_invertible(self, what: str) -> None:
    """Raises `SingularKernelError` if `what` would divide by a 0 eigenvalue.

    A traced spectrum cannot be checked; then `phi` at infinite time drops
    the null directions (a pseudo-inverse: the minimum-norm interpolant).
    """
    if self.n_null:
      raise SingularKernelError(self.facts.message(
          SINGULAR, what=what, n_null=self.n_null))


@functools.partial(jax.jit, static_argnames=("absolute",))
def _eigh(k: Array, diag_reg: Array, absolute: bool):
  k2 = make_2d(k)
  k2r, mean_diag = Regularizer(diag_reg, absolute).apply(k2)
  lam, vecs = jnp.linalg.eigh(k2r)
  tol = k2.shape[0] * jnp.finfo(lam.dtype).eps * jnp.max(jnp.abs(lam))
  return jnp.where(lam > tol, lam, 0.), vecs, lam, tol, mean_diag


def _facts(name, reg, lam, tol, mean_diag) -> _Facts:
  lam = np.asarray(lam)
  return _Facts(name, reg, str(lam.dtype), lam.shape[0], float(tol),
                float(lam[0]), float(lam[-1]), float(mean_diag))


def spectrum(k: Array, reg: Regularizer, name: str) -> Spectrum:
  """Eigendecomposes `make_2d(k) + reg`, checking it when concrete.

  Args:
    k: square kernel `(n, n, h, h, ...)`.
    reg: the diagonal regularizer.
    name: the user's name of `k`, for messages.

  Raises:
    SingularKernelError: if `k2 + reg` has an eigenvalue below `-tol`.
  """
  lam, vecs, raw, tol, mean_diag = eager(_eigh, as_float(k), reg.diag_reg,
                                         reg.absolute)
  if not is_concrete(raw) or raw.shape[0] == 0:
    return Spectrum(lam, vecs, None, None)
  facts = _facts(name, reg, raw, tol, mean_diag)
  if facts.lam_min < -facts.tol:
    raise SingularKernelError(facts.message(NOT_PSD))
  return Spectrum(lam, vecs, int(np.sum(np.asarray(raw) <= facts.tol)), facts)


def _lower(k: Array, diag_reg: Array, absolute: bool) -> Array:
  k2r, _ = Regularizer(diag_reg, absolute).apply(make_2d(k))
  return jnp.linalg.cholesky(k2r)


@functools.partial(jax.jit, static_argnames=("absolute",))
def _breaks_down(lower: Array, k: Array, diag_reg: Array,
                 absolute: bool) -> Array:
  """Whether a pivot `L_ii^2` is not finite or at round-off level."""
  k2 = make_2d(k)
  amount, _ = Regularizer(diag_reg, absolute).amount(k2)
  pivots = jnp.square(jnp.diagonal(lower))
  tol = k2.shape[0] * jnp.finfo(k2.dtype).eps * jnp.max(jnp.abs(
      jnp.diagonal(k2) + amount))
  return jnp.logical_not(jnp.all(jnp.isfinite(pivots))) | jnp.any(pivots <= tol)


_cholesky = jax.jit(_lower, static_argnames=("absolute",))


@functools.lru_cache(maxsize=None)
def _cholesky_column_major(device):
  """`_cholesky` whose factor is laid out column-major on `device`, or None
  where this JAX has no layout API."""
  try:
    from jax.experimental.layout import Format, Layout  # pylint: disable=g-import-not-at-top
    column_major = Format(Layout(major_to_minor=(1, 0)),
                          jax.sharding.SingleDeviceSharding(device))
  except (ImportError, AttributeError, TypeError, ValueError):
    return None
  return jax.jit(_lower, static_argnames=("absolute",),
                 out_shardings=column_major)


def _factorize(k: Array, diag_reg, absolute: bool):
  """`(L, bad)`; `L` column-major when `k` and `diag_reg` are concrete and
  `k` is on one device.

  Two programs: with a second output beside it, XLA:CPU no longer writes
  the factor in place (34 MiB more at n = 3000).
  """
  concrete = is_concrete(k, diag_reg)  # no jit, vmap or grad tracing them
  devices = getattr(k, "devices", lambda: ())() if concrete else ()
  fn = None
  if len(devices) == 1:
    fn = _cholesky_column_major(next(iter(devices)))
  lower = (fn or _cholesky)(k, diag_reg, absolute=absolute)
  return lower, _breaks_down(lower, k, diag_reg, absolute=absolute)


def cholesky(k: Array, reg: Regularizer, name: str, what: str) -> Array:
  """The Cholesky factor `L` of `make_2d(k) + reg = L L^T` (`k` square).

  LAPACK factorizes and solves in column-major order, so a concrete `L` is
  returned laid out column-major (JAX's layout API): the factorization
  then writes `L` in place, and every jitted solve compiles for that layout
  and reads it uncopied. With XLA:CPU's default row-major layout the factor
  was copied once more on the way out and again into each solve; at
  n = 3000 the factorization needed 34 MiB of temporaries and now none,
  `K^{-1} Y` 34 MiB and the NNGP and NTK posterior covariances 40 and
  47 MiB, now a few. A traced `k` (or one spread over devices) gets the
  default layout.

  Checked when concrete. A traced kernel cannot be: if it is not positive
  definite, JAX's Cholesky returns NaN and so do the predictions (as NT).

  Raises:
    SingularKernelError: if the factorization fails or a pivot is at
      round-off level (the matrix is then singular in the working precision:
      its smallest eigenvalue is at most its smallest pivot).
  """
  factor, bad = eager(_factorize, as_float(k), reg.diag_reg, reg.absolute)
  if is_concrete(bad) and factor.shape[0] and bool(bad):
    # Only on the error path: the spectrum, for a precise message.
    s = spectrum(k, reg, name)
    s.require_invertible(what)
    raise SingularKernelError(s.facts.message(NEARLY_SINGULAR, what=what))
  return factor
