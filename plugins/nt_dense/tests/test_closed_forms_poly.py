"""Kernels of the polynomial, user-defined and quadrature nonlinearities, of
LayerNorm and of Dropout, against independent computations.

For `serial(Dense(...), phi)` the pre-activations are exactly Gaussian with
covariance `q(x, x') = W_std^2 <x, x'> / d + b_std^2` and NTK `q` itself (NTK
parameterization, first layer), so

    nngp = E[phi(u) phi(v)],  ntk = q(x, x') E[phi'(u) phi'(v)]

with `(u, v) ~ N(0, [[q11, q12], [q12, q22]])`. The test computes both
expectations by its own quadrature — 2-D Gauss-Hermite in the *eigenvector*
frame of the 2x2 covariance (the library uses the Cholesky frame), or, for
the kinked rectified monomials, an exact polar-coordinates rule — with `phi`
the layer's own `apply_fn` and `phi'` its `jax.grad`, so it checks that the
finite and the infinite-width rules describe the same function.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial.hermite import hermgauss
from numpy.polynomial.legendre import leggauss

import ntcore
from ntcore import stax

import nt_dense
from nt_dense.custom import gauss_hermite, quadrature_dual

W_STD, B_STD = 1.2, 0.2

rng = np.random.default_rng(1)


def rows(n, d=3):
  """Random directions with mean squares in [0.3, 1]: pre-activation
  variances stay in [0.47, 1.48], where the quadrature bounds below hold."""
  z = rng.normal(size=(n, d))
  return z * np.sqrt(rng.uniform(0.3, 1., (n, 1)) / np.mean(z ** 2, 1,
                                                           keepdims=True))


X1, X2 = rows(5), rows(4)


# --- independent references ---------------------------------------------

def dense_q(x1, x2, w_std=W_STD, b_std=B_STD):
  """Covariance of `Dense(w_std, b_std)` outputs for inputs `x1`, `x2`."""
  return w_std ** 2 * x1 @ x2.T / x1.shape[1] + (b_std or 0.) ** 2


def pairs(x1, x2, **dense):
  x2_ = x1 if x2 is None else x2
  q1 = np.diag(dense_q(x1, x1, **dense))[:, None]
  q2 = np.diag(dense_q(x2_, x2_, **dense))[None, :]
  return q1, q2, dense_q(x1, x2_, **dense)


def elementwise_fns(layer):
  phi = lambda x: layer.apply_fn((), x)
  dphi = jnp.vectorize(jax.grad(phi))
  return phi, dphi


def gh_expectation(f, g, q1, q2, c, deg):
  """`E[f(u) g(v)]` by a `deg x deg` Gauss-Hermite rule, broadcast over entries.

  `(u, v) = V sqrt(L) z` with `[[q1, c], [c, q2]] = V L V^T`: the symmetric
  eigen-frame, so nothing is shared with the library's Cholesky frame.
  """
  t, w = hermgauss(deg)
  z, w = np.sqrt(2) * t, w / np.sqrt(np.pi)
  q1, q2, c = np.broadcast_arrays(q1, q2, c)
  cov = np.stack([np.stack([q1, c], -1), np.stack([c, q2], -1)], -2)
  lam, vec = np.linalg.eigh(cov)
  root = vec * np.sqrt(np.maximum(lam, 0))[..., None, :]  # (..., 2, 2)
  zi, zj = z[:, None], z[None, :]
  u = root[..., 0, 0, None, None] * zi + root[..., 0, 1, None, None] * zj
  v = root[..., 1, 0, None, None] * zi + root[..., 1, 1, None, None] * zj
  vals = np.asarray(f(jnp.asarray(u))) * np.asarray(g(jnp.asarray(v)))
  return np.einsum("...ij,i,j->...", vals, w, w)


def polar_expectation(f, n, q1, q2, c, nodes=64):
  """`E[f(u) f(v)]` for `f` positively homogeneous of degree `n`, zero for
  negative arguments: exact up to round-off.

  With `z = r (cos a, sin a)`, `E[r^(2n)] = 2^n n!` and `f(u) f(v) =
  r^(2n) f(L0 . e(a)) f(L1 . e(a))`, nonzero only on the arc where both
  `L_k . e(a) = |L_k| cos(a - b_k) > 0`: `[max b - pi/2, min b + pi/2]`. The
  integrand is smooth there, so Gauss-Legendre on the arc is exact to
  round-off (unlike Gauss-Hermite across the kink at 0).
  """
  q1, q2, c = np.broadcast_arrays(q1, q2, c)
  l0 = np.stack([np.sqrt(q1), np.zeros_like(q1)], -1)
  s = np.sqrt(np.maximum(q2 - c ** 2 / q1, 0))
  l1 = np.stack([c / np.sqrt(q1), s], -1)
  b0 = np.arctan2(l0[..., 1], l0[..., 0])
  b1 = np.arctan2(l1[..., 1], l1[..., 0])
  lo, hi = np.maximum(b0, b1) - np.pi / 2, np.minimum(b0, b1) + np.pi / 2
  t, w = leggauss(nodes)
  a = (lo + hi)[..., None] / 2 + (hi - lo)[..., None] / 2 * t
  e = np.stack([np.cos(a), np.sin(a)], -1)
  fu = np.asarray(f(jnp.asarray(np.einsum("...k,...jk->...j", l0, e))))
  fv = np.asarray(f(jnp.asarray(np.einsum("...k,...jk->...j", l1, e))))
  arc = (hi - lo) / 2 * np.sum(w * fu * fv, -1)
  return 2 ** n * math.factorial(n) * arc / (2 * np.pi)


def assert_close(actual, expected, rtol, name):
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert np.all(np.isfinite(actual)), f"{name}: non-finite entries"
  np.testing.assert_allclose(actual, expected, rtol=rtol,
                             atol=rtol * np.abs(expected).max(), err_msg=name)


def kernel(layer, x1, x2, **dense):
  w_std, b_std = dense.get("w_std", W_STD), dense.get("b_std", B_STD)
  net = stax.serial(stax.Dense(7, W_std=w_std, b_std=b_std), layer)
  return net.kernel_fn(x1, x2, ("nngp", "ntk"))


# --- polynomials, user duals and quadrature vs Gauss-Hermite -------------

# Polynomials of degree <= 6: a 40-point rule per axis integrates them
# exactly, so only the round-off of a 1600-term sum (~1e-15 of the largest
# term) remains; 1e-12 keeps a 1000x margin.
EXACT = {
    "Monomial0": (lambda: nt_dense.Monomial(0), 1e-12),
    "Monomial1": (lambda: nt_dense.Monomial(1), 1e-12),
    "Monomial3": (lambda: nt_dense.Monomial(3), 1e-12),
    "Monomial5": (lambda: nt_dense.Monomial(5), 1e-12),
    "Monomial6": (lambda: nt_dense.Monomial(6), 1e-12),  # beyond NT's 0..5
    "Polynomial": (lambda: nt_dense.Polynomial([0.3, -1., 0.5, 0.2, -0.1]),
                   1e-12),
    "Polynomial_const": (lambda: nt_dense.Polynomial([0.7]), 1e-12),
}

# Smooth non-polynomial functions at pre-activation variance <= 1.48. The
# reference is a 300-point rule, converged to round-off there for all of
# them, so what is measured is the library's error at its own degree:
# erf at deg 150, sin at deg 40 and the logistic family at its default deg
# 64 are at round-off (measured <= 5e-15; numerical.py's table: <= 1e-12 up
# to variance 2), 1e-12 keeps a 200x margin. Tanh at its default deg 100 is
# measured at 8e-11 (table: 2e-11 at variance 1, 8e-8 at 2), hence 1e-9.
# The user-given erf dual is a closed form, exact to round-off.
SMOOTH = {
    "Elementwise_erf": (lambda: nt_dense.Elementwise(
        jax.scipy.special.erf,
        lambda c, q1, q2: 2 / np.pi * jnp.arcsin(
            2 * c / jnp.sqrt((1 + 2 * q1) * (1 + 2 * q2)))), 1e-12),
    "ElementwiseNumerical_erf": (lambda: nt_dense.ElementwiseNumerical(
        jax.scipy.special.erf, 150), 1e-12),
    "ElementwiseNumerical_sin_autodiff": (lambda: nt_dense.ElementwiseNumerical(
        lambda x: jnp.sin(x) + 0.3, 40), 1e-12),
    "Tanh": (nt_dense.Tanh, 1e-9),
    "Sigmoid": (nt_dense.Sigmoid, 1e-12),
    "Softplus": (nt_dense.Softplus, 1e-12),
    "Swish": (nt_dense.Swish, 1e-12),
}


@pytest.mark.parametrize("x2", [None, X2], ids=["x2=None", "x2"])
@pytest.mark.parametrize("name", sorted(EXACT) + sorted(SMOOTH))
def test_matches_gauss_hermite(name, x2):
  make, rtol = EXACT.get(name) or SMOOTH[name]
  deg = 40 if name in EXACT else 300
  layer = make()
  phi, dphi = elementwise_fns(layer)
  q1, q2, c = pairs(X1, x2)
  k = kernel(layer, X1, x2)
  assert_close(k.nngp, gh_expectation(phi, phi, q1, q2, c, deg), rtol,
               f"{name} nngp")
  assert_close(k.ntk, c * gh_expectation(dphi, dphi, q1, q2, c, deg), rtol,
               f"{name} ntk")


def test_hermite_on_unit_variance_inputs():
  # NT's convention: the kernel is nngp^n for unit-variance pre-activations.
  # Dense(W_std=1, no bias) on rows with mean(x^2) = 1 gives q11 = q22 = 1,
  # where He_n / sqrt(n!) has E[h(u) h(v)] = c^n exactly (Mehler); the
  # 40-point rule integrates the degree-8 polynomial exactly.
  x = X1 / np.sqrt(np.mean(X1 ** 2, 1, keepdims=True))
  for n in range(5):
    layer = nt_dense.Hermite(n)
    phi, dphi = elementwise_fns(layer)
    q1, q2, c = pairs(x, None, w_std=1., b_std=None)
    k = kernel(layer, x, None, w_std=1., b_std=None)
    np.testing.assert_allclose(np.diag(c), 1., rtol=1e-14)
    assert_close(k.nngp, c ** n, 1e-13, f"Hermite({n}) nngp vs c^n")
    assert_close(k.nngp, gh_expectation(phi, phi, q1, q2, c, 40), 1e-12,
                 f"Hermite({n}) nngp")
    assert_close(k.ntk, c * gh_expectation(dphi, dphi, q1, q2, c, 40), 1e-12,
                 f"Hermite({n}) ntk")


def test_polynomial_exact_at_zero_variance():
  # A zero input row with no bias has variance 0: u = 0 exactly, so
  # E[p(u) p(v)] = p(0) E[p(v)] (NT divides by sqrt(q1 q2) and gives NaN).
  coef = [0.3, -1., 0.5, 0.2]
  layer = nt_dense.Polynomial(coef)
  x = X1.copy()
  x[0] = 0.
  phi, dphi = elementwise_fns(layer)
  q1, q2, c = pairs(x, None, b_std=None)
  k = kernel(layer, x, None, b_std=None)
  assert_close(k.nngp, gh_expectation(phi, phi, q1, q2, c, 40), 1e-12,
               "Polynomial nngp")
  assert_close(k.nngp[0, 0], coef[0] ** 2, 1e-14, "p(0)^2")


def test_monomial_matches_nt_table():
  # NT's hand-written E[u^3 v^3] = 9 c q1 q2 + 6 c^3 and
  # E[u^4 v^4] = 3 (8 c^4 + 3 q1 q2 (8 c^2 + q1 q2)).
  q1, q2, c = pairs(X1, X2)
  p = q1 * q2
  assert_close(kernel(nt_dense.Monomial(3), X1, X2).nngp,
               9 * c * p + 6 * c ** 3, 1e-13, "Monomial(3)")
  assert_close(kernel(nt_dense.Monomial(4), X1, X2).nngp,
               3 * (8 * c ** 4 + 3 * p * (8 * c ** 2 + p)), 1e-13,
               "Monomial(4)")


# --- rectified monomials --------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("x2", [None, X2], ids=["x2=None", "x2"])
def test_rectified_monomial_matches_polar_rule(n, x2):
  layer = nt_dense.RectifiedMonomial(n)
  phi, dphi = elementwise_fns(layer)
  q1, q2, c = pairs(X1, x2)
  k = kernel(layer, X1, x2)
  off = ~np.eye(len(X1), dtype=bool) if x2 is None else np.ones(c.shape, bool)
  # Off the diagonal |cos theta| < 0.99 here and both sides are exact up to
  # round-off (~1e-15 relative); 1e-11 keeps a wide margin.
  want = polar_expectation(phi, n, q1, q2, c)
  assert_close(np.asarray(k.nngp)[off], want[off], 1e-11, f"n={n} nngp")
  if n == 0:
    np.testing.assert_array_equal(k.ntk, 0.)
  else:
    dwant = c * polar_expectation(dphi, n - 1, q1, q2, c)
    assert_close(np.asarray(k.ntk)[off], dwant[off], 1e-11, f"n={n} ntk")


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_rectified_monomial_diagonal_finite_and_exact(n):
  # NT 0.6.5 returns NaN here. On the diagonal theta = 0 and the kernel is
  # (2n - 1)!! q^n / 2. The nngp diagonal goes through the general formula,
  # whose cos(theta) = c / sqrt(q q) carries a round-off eps, so theta (and
  # the kernel) carry ~sqrt(2 eps) = 2e-8 relative error: rtol 1e-7. cov1
  # uses the exact diagonal formula: round-off only.
  layer = nt_dense.RectifiedMonomial(n)
  net = stax.serial(stax.Dense(7, W_std=W_STD, b_std=B_STD), layer)
  k = net.kernel_fn(X1, None, ("nngp", "ntk", "cov1"))
  q = np.diag(dense_q(X1, X1))
  dfact = np.prod(np.arange(2 * n - 1, 0, -2, dtype=float))
  assert np.all(np.isfinite(k.nngp)) and np.all(np.isfinite(k.ntk))
  assert_close(np.diag(k.nngp), dfact / 2 * q ** n, 1e-7, "nngp diagonal")
  assert_close(k.cov1, dfact / 2 * q ** n, 1e-14, "cov1")
  ntk_want = 0. if n == 0 else q * n ** 2 * np.prod(
      np.arange(2 * n - 3, 0, -2, dtype=float)) / 2 * q ** (n - 1)
  assert_close(np.diag(k.ntk), ntk_want + 0 * q, 1e-7, "ntk diagonal")


# --- quadrature rule --------------------------------------------------------

def erf_dual(c, q1, q2):
  """Closed forms: E[erf(u) erf(v)] and E[erf'(u) erf'(v)] (NT paper Table 1)."""
  p = (1 + 2 * q1) * (1 + 2 * q2)
  return (2 / np.pi * jnp.arcsin(2 * c / jnp.sqrt(p)),
          4 / np.pi / jnp.sqrt(p - 4 * c ** 2))


def test_elementwise_numerical_converges_to_erf():
  q1, q2, c = pairs(X1, X2)
  want, dwant = erf_dual(c, q1, q2)
  errors = []
  for deg in (4, 8, 16, 32, 64, 128):
    k = kernel(nt_dense.ElementwiseNumerical(jax.scipy.special.erf, deg),
               X1, X2)
    errors.append(max(np.max(np.abs(k.nngp - want)),
                      np.max(np.abs(k.ntk - c * dwant))))
  # erf is entire: the error falls faster than any power of deg until it
  # reaches round-off (~1e-15 here).
  assert all(b < a or b < 1e-13 for a, b in zip(errors, errors[1:])), errors
  assert errors[0] > 1e-4, errors  # the test can tell a coarse rule apart
  assert errors[-1] < 1e-13, errors


@pytest.mark.parametrize("frame", ["cholesky", "symmetric"])
def test_quadrature_handles_zero_variance_and_full_correlation(frame):
  fn, diag = quadrature_dual(jnp.cos, 30, frame=frame)
  q = jnp.array([0., 0.5, 2.])
  # rho = +1 and -1: E[cos(u) cos(+-u)] = (1 + exp(-2q)) / 2, and
  # E[sin u sin(+-u)] = +-(1 - exp(-2q)) / 2; cos is entire, so 30 nodes
  # reach round-off at q <= 2.
  for sign in (1., -1.):
    nngp, ntk = fn(sign * q, q, q, jnp.ones(3))
    assert_close(nngp, (1 + np.exp(-2 * q)) / 2, 1e-13, "rho=+-1 nngp")
    assert_close(ntk, sign * (1 - np.exp(-2 * q)) / 2 + 0 * q, 1e-13,
                 "rho=+-1 ntk")
  # q1 = 0: u = 0, so E[cos(0) cos(v)] = exp(-q2 / 2) and E[sin 0 sin v] = 0.
  for args in ((jnp.zeros(3), jnp.zeros(3), q), (jnp.zeros(3), q, jnp.zeros(3))):
    nngp, ntk = fn(*args, jnp.ones(3))
    assert_close(nngp, np.exp(-q / 2), 1e-13, "a zero variance: nngp")
    np.testing.assert_allclose(ntk, 0., atol=1e-15)
  assert_close(diag(q), (1 + np.exp(-2 * q)) / 2, 1e-13, "diag")
  # Gradients through the rule stay finite at the same points.
  for c in (q, 0. * q):
    g = jax.grad(lambda s: fn(s * c, s * q, q, None)[0].sum())(1.)
    assert np.isfinite(g)


def test_named_quadrature_layers_are_symmetric_and_batch_consistent():
  # The symmetric frame gives each entry as a symmetric function of its own
  # pair: symmetry and sub-batch rows hold to round-off, even at variances
  # 4..13 and low degrees, where the quadrature error itself is 1e-5..1e-2.
  x = rows(5) * 3.
  for layer in (nt_dense.Tanh(32), nt_dense.Sigmoid(16)):
    net = stax.serial(stax.Dense(7, W_std=W_STD, b_std=B_STD), layer)
    k = net.kernel_fn(x, None, ("nngp", "ntk", "cov1"))
    half = net.kernel_fn(x[:2], x, ("nngp", "ntk"))
    for m, h in zip(k[:2], half):
      np.testing.assert_allclose(m, np.asarray(m).T, rtol=1e-14, atol=0)
      np.testing.assert_allclose(m[:2], h, rtol=1e-14, atol=0)
    np.testing.assert_allclose(np.diag(k.nngp), k.cov1, rtol=1e-12)


def test_elementwise_numerical_is_nt_rule():
  # ElementwiseNumerical keeps NT's Cholesky frame (its numbers match NT's
  # to round-off in the conformance cases); the cross kernel equals the
  # frame's rule applied entry by entry.
  layer = nt_dense.ElementwiseNumerical(jnp.tanh, 20)
  q1, q2, c = pairs(X1, X2)
  fn, _ = quadrature_dual(jnp.tanh, 20, frame="cholesky")
  want = fn(jnp.asarray(c), jnp.asarray(q1 + 0 * c), jnp.asarray(q2 + 0 * c),
            jnp.asarray(c))
  k = kernel(layer, X1, X2)
  assert_close(k.nngp, want[0], 1e-14, "nngp")
  assert_close(k.ntk, want[1], 1e-14, "ntk")


def test_gauss_hermite_rule():
  # Agrees with numpy's rule where numpy's works (to ~1e-13, the accuracy of
  # either), and stays finite where numpy's gives NaN (deg >= ~370).
  for deg in (1, 2, 7, 40, 200):
    t, w = gauss_hermite(deg)
    tn, wn = hermgauss(deg)
    np.testing.assert_allclose(t, tn, rtol=0, atol=1e-13)
    np.testing.assert_allclose(w, wn, rtol=1e-12, atol=0)
  t, w = gauss_hermite(500)
  assert np.all(np.isfinite(t)) and np.all(np.isfinite(w))
  # x^4 e^(-x^2) integrates to 3 sqrt(pi) / 4.
  np.testing.assert_allclose(np.sum(w * t ** 4), 3 * np.sqrt(np.pi) / 4,
                             rtol=1e-13)


# --- Elementwise: user dual ----------------------------------------------

def test_elementwise_autodiff_matches_given_derivative():
  fn = jax.scipy.special.erf
  nngp_fn = lambda c, q1, q2: erf_dual(c, q1, q2)[0]
  d_nngp_fn = lambda c, q1, q2: erf_dual(c, q1, q2)[1]
  auto = kernel(nt_dense.Elementwise(fn, nngp_fn), X1, X2)
  given = kernel(nt_dense.Elementwise(fn, nngp_fn, d_nngp_fn), X1, X2)
  q1, q2, c = pairs(X1, X2)
  want, dwant = erf_dual(c, q1, q2)
  assert_close(auto.nngp, want, 1e-13, "nngp")
  assert_close(auto.ntk, c * dwant, 1e-12, "autodiff ntk")
  assert_close(given.ntk, c * dwant, 1e-13, "given ntk")


def test_elementwise_errors():
  with pytest.raises(ValueError, match="neither was given"):
    nt_dense.Elementwise()
  kernel_only = nt_dense.Elementwise(nngp_fn=lambda c, q1, q2: c)
  with pytest.raises(NotImplementedError, match="Pass fn"):
    kernel_only.apply_fn((), jnp.ones((2, 3)))
  finite_only = nt_dense.Elementwise(fn=jnp.sin)
  np.testing.assert_allclose(finite_only.apply_fn((), jnp.ones(2)),
                             np.sin(1.) * np.ones(2))
  with pytest.raises(NotImplementedError, match="ElementwiseNumerical"):
    kernel(finite_only, X1, X2)


# --- LayerNorm ----------------------------------------------------------

def test_layernorm_channel_axis_closed_form():
  # nngp(a, b) = q_ab / sqrt((eps + q_aa)(eps + q_bb)): with eps = 0.3 the
  # eps placement is visible; everything else is exact arithmetic.
  eps = 0.3
  net = stax.serial(stax.Dense(7, W_std=W_STD, b_std=B_STD),
                    nt_dense.LayerNorm(eps=eps))
  for x2 in (None, X2):
    q1, q2, c = pairs(X1, x2)
    k = net.kernel_fn(X1, x2, ("nngp", "ntk", "cov1"))
    assert_close(k.nngp, c / np.sqrt((eps + q1) * (eps + q2)), 1e-14, "nngp")
    assert_close(k.ntk, c / np.sqrt((eps + q1) * (eps + q2)), 1e-14, "ntk")
    assert_close(k.cov1, q1[:, 0] / (eps + q1[:, 0]), 1e-14, "cov1")


def test_layernorm_spatial_axes_known_norms():
  # Inputs (n, h, c) whose positions have chosen mean squares s[n, h]; after
  # Dense(W_std, no bias) the variance at (n, h) is W_std^2 s[n, h], and
  # LayerNorm over (h, c) divides by sqrt(eps + mean_h W_std^2 s[n, h]) for
  # each example, in every layout.
  s = np.array([[1., 4., 0.25], [2., 2., 2.], [0.5, 1., 9.]])
  z = rng.normal(size=(3, 3, 6))
  x = z / np.sqrt(np.mean(z ** 2, -1, keepdims=True)) * np.sqrt(s)[..., None]
  eps = 0.1
  net = stax.serial(stax.Dense(5, W_std=W_STD), nt_dense.LayerNorm(
      axis=(1, 2), eps=eps))
  cov = W_STD ** 2 * np.einsum("ahc,bgc->abhg", x, x) / x.shape[-1]
  norm = eps + W_STD ** 2 * s.mean(1)
  want = cov / np.sqrt(norm[:, None, None, None] * norm[None, :, None, None])
  for db in (True, False):
    k = net.kernel_fn(x, None, ("nngp", "cov1"), diagonal_batch=db)
    assert_close(k.nngp, want, 1e-14, f"nngp db={db}")
    got1 = k.cov1 if db else np.einsum("aahg->ahg", k.cov1)
    assert_close(got1, np.einsum("aahg->ahg", want), 1e-14, f"cov1 db={db}")
  k = net.kernel_fn(x, None, "nngp", diagonal_spatial=True)
  assert_close(k, np.einsum("abhh->abh", want), 1e-14, "diagonal_spatial")


def test_layernorm_spatial_axes_exclude_masked_positions():
  # A masked position has zero variance after Dense and is left out of the
  # mean, as in NT: the normalizer is eps + mean over unmasked positions.
  x = rng.normal(size=(2, 4, 6))
  x[0, 1] = 7.  # position 1 of example 0 is masked
  net = stax.serial(stax.Dense(5, W_std=W_STD), nt_dense.LayerNorm(
      axis=(1, 2), eps=0.))
  k = net.kernel_fn(x, None, "cov1", mask_constant=7.)
  xm = np.where(x == 7., 0., x)
  var = W_STD ** 2 * np.mean(xm ** 2, -1)  # (n, h)
  keep = np.array([[1, 0, 1, 1], [1, 1, 1, 1]], bool)
  norm = np.sum(var * keep, 1) / keep.sum(1)
  want = W_STD ** 2 * np.einsum("ahc,agc->ahg", xm, xm) / 6 / norm[:, None, None]
  assert_close(k, want, 1e-14, "masked cov1")


def test_layernorm_finite_matches_kernel_at_large_width():
  # One wide network: the channel mean of y1 * y2 estimates the kernel with
  # relative error ~ sqrt(2 / width) = 0.01; 0.06 allows a 6-sigma draw.
  width = 20000
  layers = stax.serial(stax.Dense(width, W_std=W_STD, b_std=B_STD),
                       nt_dense.LayerNorm())
  _, params = layers.init_fn(jax.random.PRNGKey(0), X1.shape)
  y = np.asarray(layers.apply_fn(params, X1))
  np.testing.assert_allclose(y.mean(-1), 0., atol=1e-12)
  np.testing.assert_allclose((y ** 2).mean(-1), 1., rtol=1e-9)  # eps = 1e-12
  k = layers.kernel_fn(X1, None, "nngp")
  np.testing.assert_allclose(y @ y.T / width, k, atol=0.06)


def test_layernorm_errors():
  with pytest.raises(ntcore.KernelRequirementError, match="channel axis"):
    kernel(nt_dense.LayerNorm(axis=0), X1, X2)
  after_relu = stax.serial(stax.Dense(7), nt_dense.Relu(), nt_dense.LayerNorm())
  with pytest.raises(ntcore.KernelRequirementError,
                     match=r"LayerNorm needs a Gaussian.*\(Relu\)"):
    after_relu.kernel_fn(X1, X2)


# --- Dropout ------------------------------------------------------------

def test_dropout_test_mode_is_identity():
  base = stax.serial(stax.Dense(7, W_std=W_STD, b_std=B_STD))
  net = stax.serial(base, nt_dense.Dropout(0.3, mode="test"))
  for x2 in (None, X2):
    want = base.kernel_fn(X1, x2, ("nngp", "ntk", "cov1"))
    got = net.kernel_fn(X1, x2, ("nngp", "ntk", "cov1"))
    for g, w in zip(got, want):
      np.testing.assert_array_equal(g, w)
  x = jnp.asarray(X1)
  np.testing.assert_array_equal(nt_dense.Dropout(0.3, "test").apply_fn((), x), x)


@pytest.mark.parametrize("db", [True, False])
@pytest.mark.parametrize("ds", [True, False])
def test_dropout_train_scales_same_example_same_position(db, ds):
  rate = 0.4
  x = rng.normal(size=(3, 4, 2))  # one spatial axis
  base = stax.serial(stax.Dense(7, W_std=W_STD, b_std=B_STD))
  net = stax.serial(base, nt_dense.Dropout(rate))
  get = ("nngp", "ntk", "cov1")
  kw = dict(diagonal_batch=db, diagonal_spatial=ds)
  n, h = x.shape[:2]
  same_ex = np.eye(n, dtype=bool)
  same_pos = np.ones((h,), bool) if ds else np.eye(h, dtype=bool)
  same = (same_ex[:, :, None] & same_pos[None, None]) if ds else (
      same_ex[:, :, None, None] & same_pos[None, None])
  factor = np.where(same, 1 / rate, 1.)
  want, got = base.kernel_fn(x, None, get, **kw), net.kernel_fn(x, None, get, **kw)
  assert_close(got.nngp, want.nngp * factor, 1e-15, "nngp")
  assert_close(got.ntk, want.ntk * factor, 1e-15, "ntk")
  f1 = np.diagonal(factor).transpose((-1,) + tuple(range(factor.ndim - 2))) \
      if db else factor
  assert_close(got.cov1, want.cov1 * f1, 1e-15, "cov1")
  # Two different batches: the masks are independent, nngp is unchanged,
  # the variances are not.
  x2 = rng.normal(size=(2, 4, 2))
  want = base.kernel_fn(x, x2, ("nngp", "cov2"), **kw)
  got = net.kernel_fn(x, x2, ("nngp", "cov2"), **kw)
  np.testing.assert_array_equal(got.nngp, want.nngp)
  assert not np.allclose(got.cov2, want.cov2)


def test_dropout_train_finite_and_errors():
  rate = 0.25
  layer = nt_dense.Dropout(rate)
  x = jnp.ones((200, 50))
  y = np.asarray(layer.apply_fn((), x, rng=jax.random.PRNGKey(0)))
  assert set(np.unique(y)) == {0., 1 / rate}
  # Kept fraction ~ Binomial(10^4, 0.25) / 10^4: sd 0.0043; 0.02 is 4.6 sd.
  assert abs(np.mean(y > 0) - rate) < 0.02
  with pytest.raises(ValueError, match="PRNG key"):
    layer.apply_fn((), x)
  with pytest.raises(ntcore.KernelRequirementError, match="raw inputs"):
    layer.kernel_fn(X1, X2)
  after = stax.serial(stax.Dense(7), layer, nt_dense.Relu())
  with pytest.raises(ntcore.KernelRequirementError, match="Gaussian"):
    after.kernel_fn(X1, X2)
  with pytest.raises(ValueError, match="keep probability"):
    nt_dense.Dropout(0.)
  with pytest.raises(ValueError, match="mode"):
    nt_dense.Dropout(0.5, mode="eval")


# --- requirements -----------------------------------------------------------

NONLINEARITIES = {
    "Monomial": lambda: nt_dense.Monomial(2),
    "RectifiedMonomial": lambda: nt_dense.RectifiedMonomial(1),
    "Polynomial": lambda: nt_dense.Polynomial([1., 2.]),
    "Hermite": lambda: nt_dense.Hermite(2),
    "Elementwise": lambda: nt_dense.Elementwise(jnp.sin, lambda c, a, b: c),
    "ElementwiseNumerical": lambda: nt_dense.ElementwiseNumerical(jnp.sin, 5),
    "Tanh": nt_dense.Tanh,
    "Sigmoid": nt_dense.Sigmoid,
    "Softplus": nt_dense.Softplus,
    "Swish": nt_dense.Swish,
    "LayerNorm": nt_dense.LayerNorm,
}


@pytest.mark.parametrize("name", sorted(NONLINEARITIES))
def test_raw_inputs_raise(name):
  layer = NONLINEARITIES[name]()
  with pytest.raises(ntcore.KernelRequirementError,
                     match=f"{name} needs a Gaussian input kernel"):
    layer.kernel_fn(X1, X2)


@pytest.mark.parametrize("degree", [-1, 1.5])
def test_bad_degree_raises(degree):
  for factory in (nt_dense.Monomial, nt_dense.RectifiedMonomial,
                  nt_dense.Hermite):
    with pytest.raises(ValueError, match="non-negative integer"):
      factory(degree)
