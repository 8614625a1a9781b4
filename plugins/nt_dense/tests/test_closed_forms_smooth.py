"""Closed-form kernels of Erf, Gelu, Sin, Cos, Rbf, Gabor, Exp, Gaussian, Sign
and ExpNormalized against independent 2-D Gauss-Hermite quadrature.

For `serial(Dense(...), phi)` the pre-activations are exactly Gaussian with
covariance `q(x, x') = W_std^2 <x, x'> / d + b_std^2`, so

    nngp = E[phi(u) phi(v)],  ntk = ntk_in(x, x') E[phi'(u) phi'(v)]

with `(u, v) ~ N(0, [[q11, q12], [q12, q22]])` and `ntk_in` the Dense NTK
(`q` itself in NTK parameterization, `<x, x'> / s[0] + [bias]` in the
standard one). The test computes both expectations by quadrature, with
`phi` the layer's own `apply_fn` and `phi'` its `jax.grad`, so it checks
that the finite and the infinite-width rules describe the same function.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial.hermite import hermgauss

import ntcore
from ntcore import stax
from ntcore.errors import NonFiniteKernelWarning

W_STD, B_STD = 1.3, 0.2

# Every phi tested against quadrature is an entire function (erf, x Phi(x),
# sin, exp(-x^2) sin, exp(b x), exp(b x^2) with small b), and n-point
# Gauss-Hermite converges geometrically in n for them, at a rate set by how
# sharp phi is on the scale of the pre-activation's standard deviation
# (these inputs have variances 0.28 to 4.0): erf's saturation and Gabor's
# exp(-x^2) bump are the slowest. Measured here (largest relative error over
# nngp, ntk and cov1): Erf 9e-5 at n = 40, 5e-9 at 80, 2e-13 at 120;
# Gabor 3e-2 at 40, 2e-5 at 80, 4e-9 at 120, 9e-13 at 160; everything is
# at round-off (<= 1.5e-15) from n = 200 on. DEG = 240 leaves a margin of
# 40 nodes past that, and RTOL = 1e-12 a margin of ~1000 over round-off
# while still failing on any wrong constant, sign or missing term (those
# move the kernels by 1e-3 or more).
DEG = 240
RTOL = 1e-12

# test id -> (stax name, keyword arguments)
LAYERS = {
    "Erf": ("Erf", dict()),
    "Erf_abc": ("Erf", dict(a=1.2, b=0.8, c=0.1)),
    "Sigmoid_like": ("Sigmoid_like", dict()),
    "Gelu": ("Gelu", dict()),
    "Sin": ("Sin", dict(a=1.1, b=0.9, c=0.3)),
    "Sin_default": ("Sin", dict()),
    "Cos": ("Cos", dict(a=1.1, b=0.9, c=-0.4)),
    "Cos_default": ("Cos", dict()),
    "Rbf": ("Rbf", dict(gamma=0.5)),
    "Gabor": ("Gabor", dict()),
    "Exp": ("Exp", dict(a=0.5, b=0.7)),
    "Gaussian": ("Gaussian", dict(a=1.1, b=-0.6)),
    # b > 0: integrable while 2 b q < 1, here 2 b q < 0.5.
    "Gaussian_positive_b": ("Gaussian", dict(a=0.9, b=0.05)),
}
ALL = dict(LAYERS, Sign=("Sign", {}), ExpNormalized=("ExpNormalized", {}))

# Small batches: the quadrature costs n1 n2 DEG^2 evaluations of phi.
rng = np.random.default_rng(0)
X1 = rng.normal(size=(4, 3))
X2 = rng.normal(size=(3, 3))
# The same with a zero-norm example in each batch (row 1 of X1, row 4 of X2).
X1_ZERO = X1.copy()
X1_ZERO[1] = 0.
X2_ZERO = np.concatenate([X2, np.zeros((1, 3))])
INPUTS = {"x2=None": (X1, None), "x2": (X1, X2),
          "zero, x2=None": (X1_ZERO, None), "zero, x2": (X1_ZERO, X2_ZERO)}


def make(test_id):
  name, kwargs = ALL[test_id]
  return getattr(stax, name)(**kwargs)


def expectation(f, g, q1, q2, c, deg=DEG):
  """`E[f(u) g(v)]` for `(u, v) ~ N(0, [[q1, c], [c, q2]])`, broadcast.

  Writes `u = sqrt(q1) z1`, `v = (c / sqrt(q1)) z1 + sqrt(q2 - c^2 / q1) z2`
  with independent standard normals `z1, z2` and applies the tensor
  Gauss-Hermite rule (`E[h(z)] = sum_k w_k h(sqrt(2) x_k) / sqrt(pi)`).
  """
  x, w = hermgauss(deg)
  z, w = np.sqrt(2) * x, w / np.sqrt(np.pi)
  q1, q2, c = np.broadcast_arrays(*(np.asarray(a, np.float64)
                                    for a in (q1, q2, c)))
  slope = np.where(q1 > 0, c / np.sqrt(np.where(q1 > 0, q1, 1.)), 0.)
  rest = np.sqrt(np.maximum(q2 - slope ** 2, 0.))
  fu = np.asarray(f(np.sqrt(q1)[..., None] * z))  # (..., deg): u on z1 only
  v = slope[..., None, None] * z[:, None] + rest[..., None, None] * z
  vals = fu[..., :, None] * np.asarray(g(v))
  return (vals @ w) @ w


def finite_fns(layer):
  """`phi` and `phi'` of a layer's own finite `apply_fn`."""
  apply_fn = layer.apply_fn
  phi = jax.jit(lambda x: apply_fn((), jnp.asarray(x)))
  dphi = jax.jit(jnp.vectorize(jax.grad(lambda t: apply_fn((), t))))
  return phi, dphi


def preactivations(x1, x2, b_std=B_STD):
  """Variances `(n1,)`, `(n2,)` and covariance `(n1, n2)` after the Dense."""
  x2 = x1 if x2 is None else x2
  b2 = 0. if b_std is None else b_std ** 2
  d = x1.shape[1]
  return (W_STD ** 2 * np.sum(x1 ** 2, 1) / d + b2,
          W_STD ** 2 * np.sum(x2 ** 2, 1) / d + b2,
          W_STD ** 2 * x1 @ x2.T / d + b2)


@functools.lru_cache(maxsize=None)
def quadrature(test_id, inputs, b_std):
  """`E[phi(u) phi(v)]`, `E[phi'(u) phi'(v)]`, `E[phi(u)^2]` by quadrature."""
  phi, dphi = finite_fns(make(test_id))
  q1, q2, q12 = preactivations(*INPUTS[inputs], b_std)
  return (expectation(phi, phi, q1[:, None], q2[None, :], q12),
          expectation(dphi, dphi, q1[:, None], q2[None, :], q12),
          expectation(phi, phi, q1, q1, q1))


def reference(test_id, inputs, parameterization, b_std=B_STD):
  """Expected `(nngp, ntk, cov1)` of `serial(Dense, layer)`."""
  x1, x2 = INPUTS[inputs]
  x2 = x1 if x2 is None else x2
  if parameterization == "ntk":
    ntk_in = preactivations(x1, x2, b_std)[2]
  else:  # fan-in d, s = (1, 1): the weights contribute <x, x'>, the bias 1
    ntk_in = x1 @ x2.T + (0. if b_std is None else 1.)
  nngp, dot, cov1 = quadrature(test_id, inputs, b_std)
  return nngp, ntk_in * dot, cov1


def network(layer, parameterization, b_std=B_STD):
  return stax.serial(
      stax.Dense(512, W_std=W_STD, b_std=b_std,
                 parameterization=parameterization), layer)


def assert_close(actual, expected, name, rtol=RTOL):
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert np.all(np.isfinite(actual)), f"{name}: non-finite entries"
  np.testing.assert_allclose(actual, expected, rtol=rtol,
                             atol=rtol * np.abs(expected).max(),
                             err_msg=name)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("inputs", ["x2=None", "x2"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_matches_quadrature(name, inputs, parameterization):
  x1, x2 = INPUTS[inputs]
  got = network(make(name), parameterization)[2](
      x1, x2, ("nngp", "ntk", "cov1"))
  want = reference(name, inputs, parameterization)
  for g, w, field in zip(got, want, ("nngp", "ntk", "cov1")):
    assert_close(g, w, f"{name} {field}")


def test_gelu_kernel_is_exact_gelu_even_when_approximate():
  # As in NT, approximate=True changes only the finite apply_fn.
  exact, approx = stax.Gelu(), stax.Gelu(approximate=True)
  x = jnp.linspace(-3., 3., 13)
  assert not np.allclose(exact.apply_fn((), x), approx.apply_fn((), x),
                         rtol=1e-6, atol=0)
  np.testing.assert_allclose(approx.apply_fn((), x), jax.nn.gelu(x, True))
  for k_exact, k_approx in zip(
      network(exact, "ntk")[2](X1, X2, ("nngp", "ntk")),
      network(approx, "ntk")[2](X1, X2, ("nngp", "ntk"))):
    np.testing.assert_array_equal(k_exact, k_approx)


def test_sign_matches_quadrature():
  # sign is discontinuous (along u = 0 and along v = 0, a line slanted in
  # the (z1, z2) plane), so Gauss-Hermite converges only like 1 / n: the
  # rule sees the jump smeared over a node spacing. Measured on these inputs
  # the error is 0.076 at n = 60, 0.043 at 120 and 0.021 at n = DEG = 240;
  # atol 0.04 allows for that. Sheppard's formula below pins the closed form
  # itself to round-off. sign' = 0 almost everywhere (jax.grad(jnp.sign) is
  # 0), so the NTK must be exactly 0, as in NT.
  nngp, ntk, cov1 = network(stax.Sign(), "ntk")[2](
      X1, X2, ("nngp", "ntk", "cov1"))
  want_nngp, want_dot, want_cov1 = quadrature("Sign", "x2", B_STD)
  np.testing.assert_allclose(nngp, want_nngp, atol=0.04)
  np.testing.assert_array_equal(want_dot, 0.)
  np.testing.assert_array_equal(ntk, 0.)
  np.testing.assert_array_equal(want_cov1, 1.)
  np.testing.assert_array_equal(cov1, 1.)
  q1, q2, q12 = preactivations(X1, X2)
  np.testing.assert_allclose(
      nngp, 2 / np.pi * np.arcsin(q12 / np.sqrt(q1[:, None] * q2[None, :])),
      rtol=1e-13, atol=1e-15)


def _exp_normalized(cov, var_a, var_b, gamma, shift):
  root = jnp.sqrt(var_a * var_b)
  return root * jnp.exp(gamma * (cov / root + shift))


@pytest.mark.parametrize("do_clip", [False, True])
@pytest.mark.parametrize("inputs", ["x2=None", "x2"])
def test_exp_normalized_matches_its_definition(inputs, do_clip):
  # ExpNormalized is defined by its kernel (it has no finite network), so
  # there is nothing to integrate: check the NNGP against the definition
  # and the NTK factor against the definition's c-derivative (Price's
  # theorem, the relation every other layer here satisfies). do_clip only
  # guards |rho| <= 1 against round-off (the x2=None diagonal): it clips
  # rho, and the derivative is that of the unclipped branch at the clipped
  # rho, as in NT.
  gamma, shift = 0.7, -0.5
  layer = stax.ExpNormalized(gamma=gamma, shift=shift, do_clip=do_clip)
  x1, x2 = INPUTS[inputs]
  nngp, ntk = network(layer, "ntk")[2](x1, x2, ("nngp", "ntk"))
  q1, q2, q12 = preactivations(x1, x2)
  q1, q2 = q1[:, None], q2[None, :]
  if do_clip:
    root = np.sqrt(q1 * q2)
    q12 = np.clip(q12 / root, -1, 1) * root
  ref = functools.partial(_exp_normalized, gamma=gamma, shift=shift)
  dref = jnp.vectorize(jax.grad(ref))
  ntk_in = preactivations(x1, x2)[2]
  assert_close(nngp, ref(q12, q1, q2), "nngp", rtol=1e-13)
  assert_close(ntk, ntk_in * dref(q12, q1, q2), "ntk", rtol=1e-13)


def test_exp_normalized_has_no_finite_network():
  with pytest.raises(NotImplementedError, match="kernel only"):
    stax.ExpNormalized().apply_fn((), jnp.ones((2, 3)))


@pytest.mark.parametrize("inputs", ["zero, x2=None", "zero, x2"])
@pytest.mark.parametrize("name", sorted(ALL))
def test_zero_norm_inputs_give_the_limit(name, inputs):
  # Without a bias a zero input has zero pre-activation variance: u = 0
  # exactly. The kernels must be finite and equal to the q -> 0 limit,
  # E[phi(0) phi(v)] (and E[phi'(0) phi'(v)]), also for two zero inputs.
  x1, x2 = INPUTS[inputs]
  k = network(make(name), "ntk", b_std=None)[2](x1, x2, ("nngp", "ntk", "cov1"))
  for field, m in zip(("nngp", "ntk", "cov1"), k):
    assert np.all(np.isfinite(m)), f"{name} {field} not finite"
  if name in ("ExpNormalized", "Sign"):
    # ExpNormalized: sqrt(q1 q2) -> 0 with |rho| <= 1; Sign: sign(0) = 0.
    np.testing.assert_array_equal(k.nngp[1], 0.)
    np.testing.assert_array_equal(k.cov1[1], 0.)
    return
  want = reference(name, inputs, "ntk", b_std=None)
  for got, exp, field in zip(k, want, ("nngp", "ntk", "cov1")):
    assert_close(got, exp, f"{name} {field}")


def test_sign_row_is_zero_where_the_variance_underflows():
  # x = 1.85e-290: its variance (x^2 ~ 1e-580) underflows to 0 but its
  # cross product with 1e-12 (~1e-302) does not. sign(u) of a zero-variance
  # unit is 0, so its whole row must be 0, or the kernel is not PSD (found
  # by the hypothesis test of test_suite.py: the row was 1 off-diagonal).
  x = np.zeros((3, 3))
  x[0, 0], x[1, 0] = 1e-12, 1.8540257e-290
  nngp, cov1 = network(stax.Sign(), "ntk", b_std=None)[2](
      x, None, ("nngp", "cov1"))
  np.testing.assert_array_equal(cov1, [1., 0., 0.])
  np.testing.assert_array_equal(nngp, np.diag([1., 0., 0.]))


@pytest.mark.parametrize("name", sorted(ALL))
def test_full_batch_covariance_matches_nngp(name):
  # With diagonal_batch=False, cov1 is the full (n1, n1) covariance, which
  # must equal nngp when x2 is None. (NT's Sign sets every non-zero entry
  # of a full cov1 to 1; ours applies the arcsine kernel.)
  net = network(make(name), "ntk")
  nngp, cov1 = net[2](X1, None, ("nngp", "cov1"), diagonal_batch=False)
  assert cov1.shape == (4, 4)
  np.testing.assert_allclose(cov1, nngp, rtol=1e-13, atol=1e-15)


def test_gaussian_diverges_where_the_integral_does():
  # E[exp(b u^2) exp(b v^2)] is finite only while I - 2 b S is positive
  # definite: 2 b q11 < 1, 2 b q22 < 1 and det(I - 2 b S) > 0. With b = 0.5
  # some pairs of these inputs are integrable and some are not.
  b = 0.5
  with pytest.warns(NonFiniteKernelWarning, match="diverges"):
    nngp, ntk, cov1 = network(stax.Gaussian(b=b), "ntk")[2](
        X1, X2, ("nngp", "ntk", "cov1"))
  q1, q2, q12 = preactivations(X1, X2)
  q1, q2 = q1[:, None], q2[None, :]
  det = (1 - 2 * b * q1) * (1 - 2 * b * q2) - 4 * b ** 2 * q12 ** 2
  finite = (2 * b * q1 < 1) & (2 * b * q2 < 1) & (det > 0)
  assert finite.any() and not finite.all()
  np.testing.assert_array_equal(np.isinf(nngp), ~finite)
  np.testing.assert_array_equal(np.isnan(ntk), ~finite)
  np.testing.assert_allclose(nngp[finite], 1 / np.sqrt(det[finite]),
                             rtol=1e-13)
  np.testing.assert_array_equal(np.isinf(cov1), 4 * b * q1[:, 0] >= 1)


@pytest.mark.parametrize("name", sorted(ALL))
def test_requires_an_affine_layer_before_it(name):
  layer = make(name)
  with pytest.raises(ntcore.KernelRequirementError, match="affine layer"):
    layer.kernel_fn(X1, X2)
  with pytest.raises(ntcore.KernelRequirementError, match="previous layer"):
    stax.serial(stax.Dense(4), stax.Relu(), layer)[2](X1, X2)


@pytest.mark.parametrize("name", sorted(ALL))
def test_masked_positions_have_zero_covariance(name):
  # A masked position contributes nothing (as in NT). Erf(c), Sin, Cos, Rbf,
  # Exp and Gaussian are non-zero at 0, so their rules must re-zero it.
  x = np.random.default_rng(1).normal(size=(3, 4, 2))
  x[1, 2, :] = 7.
  k = network(make(name), "ntk")[2](x, None, ("nngp", "ntk", "cov1"),
                                     mask_constant=7.)
  for field in ("nngp", "ntk"):
    m = np.asarray(getattr(k, field))
    assert np.all(m[1, :, 2, :] == 0.) and np.all(m[:, 1, :, 2] == 0.), field
    assert np.any(m != 0.) or (name, field) == ("Sign", "ntk"), field
  assert np.all(np.asarray(k.cov1)[1, 2, :] == 0.)
