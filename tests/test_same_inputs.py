"""`kernel_fn(x, x)` is the kernel of `x` with itself.

Passing the training set twice is the common idiom. ReLU-family kernels go
through `arccos(c / sqrt(q q'))`, whose slope is infinite at correlation 1:
computed as a pair of different inputs, the diagonal drifts by round-off
amplified layer after layer. Same-example entries must come from the
diagonal formula, whichever way `x` is passed.
"""

import jax
import numpy as np
import pytest

import ntcore as nt
from ntcore import kernel_ops, stax
from ntcore._network import dispatch

X = np.random.RandomState(0).normal(size=(6, 3))


def deep_relu(depth=13):
  return stax.serial(*[stax.Dense(8, W_std=2 ** 0.5, b_std=0.1), stax.Relu()]
                     * depth, stax.Dense(1))[2]


@pytest.fixture(scope="module")
def kernel_fn():
  return deep_relu()


def test_x_twice_agrees_with_x_and_none(kernel_fn):
  want = kernel_fn(X, None, ("nngp", "ntk"))
  for x2 in (X, X.copy(), X + 1e-14):
    got = kernel_fn(X, x2, ("nngp", "ntk"))
    for g, w in zip(got, want):
      np.testing.assert_array_equal(g, w)


def test_under_jit_the_check_runs_on_device(kernel_fn):
  want = kernel_fn(X, None, "ntk")
  jitted = jax.jit(kernel_fn, static_argnames="get")
  # Round-off only: `want` may come from the program shared by the
  # network's structure (ntcore/_network/dispatch.py), fused differently.
  np.testing.assert_allclose(jitted(X, X.copy(), "ntk"), want, rtol=1e-13)
  # Different inputs of the same shape still get the pairwise kernel.
  other = X[::-1].copy()
  np.testing.assert_allclose(jitted(X, other, "ntk"),
                             kernel_fn(X, other, "ntk"), rtol=1e-12)


def test_through_batch(kernel_fn):
  want = kernel_fn(X, None, "nngp")
  np.testing.assert_allclose(nt.batch(kernel_fn, 3)(X, X.copy(), "nngp"),
                             want, rtol=1e-13)


def test_same_example_entries_are_the_variances(kernel_fn):
  exact = np.diag(kernel_fn(X, None, "nngp"))
  cov1 = kernel_fn(X, None, "cov1")
  np.testing.assert_allclose(exact, cov1, rtol=1e-13)


def test_cov2_is_cov1_when_x_is_given_twice(kernel_fn):
  k = kernel_fn(X, X)
  np.testing.assert_array_equal(k.cov2, k.cov1)
  assert kernel_fn(X, None).cov2 is None


def test_other_inputs_are_not_mistaken_for_x(kernel_fn):
  x2 = X.copy()
  x2[0, 0] += 1e-6
  got = kernel_fn(X, x2, "nngp")
  assert not np.array_equal(got, kernel_fn(X, None, "nngp"))
  # Away from the changed example it is the same kernel, up to the drift
  # of the pairwise path at correlation 1 that the identity check avoids.
  np.testing.assert_allclose(got[1:, 1:], kernel_fn(X, None, "nngp")[1:, 1:],
                             rtol=1e-6)


@pytest.mark.parametrize("phi", ["Erf", "Gelu"])
@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_derivatives_at_x_given_twice_see_both_arguments(phi, get):
  """k(x + d1, x + d2) = k + dk + d2k / 2 + O(|d|^3), with the derivatives
  taken at (x, x): the value is x with itself, but a perturbation of x2
  that x1 does not get must still move the kernel (a second-order Taylor
  check, as NT's own autodiff test)."""
  kernel_fn = stax.serial(stax.Dense(1, 2., 0.01), getattr(stax, phi)(),
                          stax.Dense(1, 2., 0.01), getattr(stax, phi)())[2]
  x = np.cos(np.random.RandomState(1).normal(size=(3, 1, 2, 3)))
  rng = np.random.RandomState(2)
  d1, d2 = 1e-3 * rng.normal(size=x.shape), 1e-3 * rng.normal(size=x.shape)

  def k(a, b):
    return kernel_fn(a, b, get)

  def dk(a, b):
    return jax.jvp(k, (a, b), (d1, d2))[1]

  taylor = k(x, x) + dk(x, x) + jax.jvp(dk, (x, x), (d1, d2))[1] / 2
  err = np.abs(k(x + d1, x + d2) - taylor).max() / np.abs(taylor).mean()
  # The third-order remainder is ~|d|^3 = 1e-9; a lost x2 derivative would
  # leave ~|d| = 1e-3, a halved second derivative ~|d|^2 = 1e-6.
  assert err < 1e-7



def test_gram_is_exactly_zero_for_the_same_example_in_any_fusion():
  """`q1 q2 - c^2` written as products is fused by XLA's CPU backend into
  an FMA that leaves the rounding error of `c^2`; `kernel_ops.gram` must be
  0 bit for bit wherever `c == q1 == q2`, alone or inside a larger fused
  expression, and agree with the product form elsewhere."""
  c = np.geomspace(1e-30, 1e30, 2001) * np.random.RandomState(3).uniform(
      1, 2, 2001)
  alone = jax.jit(kernel_ops.gram)(c, c, c)
  fused = jax.jit(lambda v: kernel_ops.gram(3 * v + 1, 3 * v + 1, 3 * v + 1)
                  * v + v * v)(c)
  np.testing.assert_array_equal(alone, 0.)
  np.testing.assert_array_equal(fused, c * c)
  q1, q2 = c, c[::-1]
  cov = 0.7 * np.sqrt(q1 * q2)
  np.testing.assert_allclose(jax.jit(kernel_ops.gram)(cov, q1, q2),
                             q1 * q2 - cov ** 2, rtol=1e-14)


def test_diagonal_is_exact_in_a_program_shared_by_structure(kernel_fn,
                                                            monkeypatch):
  """A program with the hyper-parameters as arguments fuses differently from
  one with them baked in; the NTK's same-example entries must still come
  out bit for bit the same (they go through the ReLU angle at correlation
  exactly 1), and the rest agree to round-off."""
  want = np.asarray(jax.jit(kernel_fn, static_argnames="get")(X, None, "ntk"))
  monkeypatch.setenv(dispatch.SHARE_PROGRAMS_ENV, "1")
  got = np.asarray(kernel_fn(X, None, "ntk"))
  np.testing.assert_array_equal(np.diag(got), np.diag(want))
  np.testing.assert_allclose(got, want, rtol=1e-13)
