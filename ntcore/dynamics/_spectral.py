"""Functions of time applied to a kernel through its eigenvalues.

Continuous-time gradient descent on `1/(2N) |f - y|^2` with kernel `K` (NT
normalizes by `N = y_train.size`) moves the training residual as
`exp(-K tau)` with `tau = learning_rate * t / N` (linearization paper,
eqs. 8-11). Every quantity below is `V g(lam, tau) V^T` for one of:

* `decay`  = `exp(-lam tau)`,
* `growth` = `1 - exp(-lam tau)`,
* `phi`    = `(1 - exp(-lam tau)) / lam`, i.e. `K^{-1} (I - exp(-K tau))`.

Eigenvalues are `>= 0` (`Spectrum` has already cleaned them). `phi` is
written as `tau * h(lam tau)` with `h(x) = -expm1(-x) / x`, `h(0) = 1`, so a
zero eigenvalue gives the exact limit `tau` instead of `0/0`; at `tau = inf`
it is `1/lam`, and 0 for a zero eigenvalue (the pseudo-inverse, the limit
whenever the test-train kernel has no component along the null space, as
for any PSD joint kernel). Each `jnp.where` guards both branches, so
gradients with respect to `t` stay finite too.

Shapes: `lam: (P,)`, `tau: (T,)`; every function returns `(T, P)`.
"""

from __future__ import annotations

import jax.numpy as jnp

Array = jnp.ndarray


def _split(lam: Array, tau: Array):
  """Broadcasts to `(T, P)` and separates infinite times (inf * 0 = nan)."""
  lam, tau = lam[None, :], tau[:, None]
  inf = jnp.isinf(tau)
  return lam, jnp.where(inf, 0., tau), inf


def decay(lam: Array, tau: Array) -> Array:
  """`exp(-lam tau)`: 1 along zero eigenvalues for every `tau`, even inf."""
  lam, tau_f, inf = _split(lam, tau)
  finite = jnp.exp(-lam * tau_f)
  return jnp.where(inf, jnp.where(lam > 0, 0., 1.), finite)


def growth(lam: Array, tau: Array) -> Array:
  """`1 - exp(-lam tau)`, accurate for small `lam tau` (via `expm1`)."""
  lam, tau_f, inf = _split(lam, tau)
  finite = -jnp.expm1(-lam * tau_f)
  return jnp.where(inf, jnp.where(lam > 0, 1., 0.), finite)


def phi(lam: Array, tau: Array) -> Array:
  """`(1 - exp(-lam tau)) / lam`: `tau` at `lam = 0`, `1/lam` at `tau = inf`."""
  lam, tau_f, inf = _split(lam, tau)
  x = lam * tau_f
  nonzero = x != 0
  x_safe = jnp.where(nonzero, x, 1.)
  h = jnp.where(nonzero, -jnp.expm1(-x_safe) / x_safe, 1.)
  positive = lam > 0
  at_inf = jnp.where(positive, 1. / jnp.where(positive, lam, 1.), 0.)
  return jnp.where(inf, at_inf, tau_f * h)


def in_basis(vecs: Array, g: Array, b: Array) -> Array:
  """`V diag(g_t) V^T b` for every time `t`.

  Shapes: `vecs: (P, P)`, `g: (T, P)`, `b: (P, M)`; returns `(T, P, M)`.
  """
  c = vecs.T @ b
  return jnp.einsum("pi,tim->tpm", vecs, g[:, :, None] * c[None])


def sandwich(left: Array, g: Array, right: Array) -> Array:
  """`left diag(g_t) right` for every time `t`.

  Shapes: `left: (A, P)`, `g: (T, P)`, `right: (P, B)`; returns `(T, A, B)`.
  """
  return jnp.einsum("ai,tib->tab", left, g[:, :, None] * right[None])
