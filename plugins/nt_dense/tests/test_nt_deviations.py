"""Where nt-dense's kernels and NT's differ, each pinned by the invariance
NT breaks (listed in the README section "Where ntcore differs from NT")."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntcore import stax

rng = np.random.default_rng(11)
X = rng.normal(size=(5, 3))
W_STD, B_STD = 1.3, 0.4


@pytest.mark.parametrize("b_std", [None, B_STD])
def test_sign_full_cov1_is_the_arcsine_kernel(b_std):
  """NT's `Sign` sets every non-zero entry of a full `cov1` to 1, so with
  `diagonal_batch=False` the covariance of `x1` with itself is not its NNGP
  off the diagonal. It must be both the NNGP of `x1` with itself and the
  closed form `(2 / pi) arcsin(rho)` (Sheppard), `rho` the pre-activation
  correlation `c12 / sqrt(q1 q2)` after the Dense layer."""
  net = stax.serial(stax.Dense(16, W_std=W_STD, b_std=b_std), stax.Sign())
  cov1 = net[2](X, X[:2], "cov1", diagonal_batch=False)
  nngp = net[2](X, None, "nngp")
  c = W_STD ** 2 * X @ X.T / X.shape[1] + (0. if b_std is None else b_std ** 2)
  q = np.diag(c)
  closed = (2 / np.pi) * np.arcsin(np.clip(c / np.sqrt(np.outer(q, q)), -1, 1))
  assert cov1.shape == (5, 5)
  off = ~np.eye(5, dtype=bool)
  assert np.all(np.abs(closed[off]) < 0.99)  # NT's 1 would be far off
  np.testing.assert_allclose(cov1, nngp, rtol=1e-13, atol=1e-15)
  np.testing.assert_allclose(cov1, closed, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_relu_gradients_at_zero_inputs_are_zero_not_nan(get):
  """NT issue #123: the kernel of zero inputs is 0 and so are its gradients
  (NT returns NaN). The dual's JVP is exact: d/dc = dsigma, d/dq = k
  sqrt(q1 q2 - c^2) / (2 q), finite where the naive derivative is 0/0."""
  kernel_fn = stax.serial(stax.Dense(3), stax.Relu(), stax.Dense(1))[2]
  x = jnp.zeros((1, 4))

  def scalar(a, b):
    return kernel_fn(a, b, get)[0, 0]

  for f in (scalar, jax.jit(scalar)):
    value, grads = jax.value_and_grad(f, (0, 1))(x, x)
    assert value == 0
    for g in grads + (jax.jacfwd(f)(x, x),):
      np.testing.assert_array_equal(g, jnp.zeros_like(x))


def test_relu_nngp_gradient_at_correlation_one_matches_finite_differences():
  """At x1 == x2 the arccos terms of the NNGP's derivative cancel; the
  gradient is finite and matches a central difference."""
  kernel_fn = stax.serial(stax.Dense(3, b_std=0.1), stax.Relu(),
                          stax.Dense(1))[2]
  x = np.random.RandomState(0).normal(size=(1, 4))
  direction = np.random.RandomState(1).normal(size=(1, 4))

  def scalar(a, b):
    return kernel_fn(a, b, "nngp")[0, 0]

  grad_x2 = jax.grad(scalar, 1)(x, x)
  assert np.all(np.isfinite(grad_x2))
  # A smaller step loses digits to the pairwise arccos of nearly equal inputs.
  h = 1e-4
  fd = (scalar(x, x + h * direction) - scalar(x, x - h * direction)) / (2 * h)
  np.testing.assert_allclose(np.sum(grad_x2 * direction), fd, rtol=1e-5)
