"""Monte Carlo kernels: NT's sample stream, running estimates, convergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import random

from ntcore import stax
from ntcore.errors import BatchError
from nt_montecarlo import (EstimatorArgumentError, empirical_kernel_fn,
                           empirical_ntk_fn, monte_carlo_kernel_fn)

RTOL = 1e-12  # Same samples, different summation order: float64 round-off.


def _normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def assert_close(actual, expected, rtol=RTOL):
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape
  scale = max(np.max(np.abs(expected)), 1e-300)
  np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# A plain network (no stax): W, w ~ N(0, 1), f(x) = tanh(x W / sqrt(d)) w.
# One `random.normal` call: each PRNG call costs ~0.5 s of XLA compilation.
def init_fn(key, input_shape):
  d = input_shape[-1]
  w = random.normal(key, (d * 5 + 5 * 2,))
  return input_shape[:-1] + (2,), (w[:d * 5].reshape(d, 5),
                                   w[d * 5:].reshape(5, 2))


def apply_fn(params, x):  # No **kwargs: it must not be handed `rng=`.
  return jnp.tanh(x @ params[0] / jnp.sqrt(x.shape[-1])) @ params[1]


X1, X2 = _normal(0, (3, 4)), _normal(1, (2, 4))
KEY = random.PRNGKey(7)


@pytest.fixture(scope="module")
def nt_params():
  """The parameters of NT's samples 0..4 from KEY (see monte_carlo.py)."""
  init = jax.jit(lambda k: init_fn(k, X1.shape)[1])  # One compile, not 5.
  key, params = KEY, []
  for _ in range(5):
    with jax.threefry_partitionable(False):  # split as JAX 0.4, NT's
      key, sample_key = random.split(key)
      init_key, _ = random.split(sample_key)
    params.append(init(init_key))
  return params


def test_samples_follow_nt_key_stream_and_average(nt_params):
  kernel_fn = empirical_kernel_fn(apply_fn, trace_axes=())
  samples = [kernel_fn(X1, X2, None, p) for p in nt_params]
  # Chunks of 2 put the boundaries of n = 1, 3, 5 inside chunks.
  estimates = list(monte_carlo_kernel_fn(
      init_fn, apply_fn, KEY, [5, 1, 3], trace_axes=(),
      _samples_per_chunk=2)(X1, X2))
  assert len(estimates) == 3
  for n, est in zip((1, 3, 5), estimates):
    assert type(est).__name__ == "MonteCarloKernel"
    assert est.ntk.shape == est.nngp.shape == (3, 2, 2, 2)
    for g in ("nngp", "ntk"):
      assert_close(getattr(est, g),
                   sum(getattr(s, g) for s in samples[:n]) / n)


def test_int_n_samples_and_get(nt_params):
  mc = monte_carlo_kernel_fn(init_fn, apply_fn, KEY, 5)
  ntk = mc(X1, None, "ntk")
  assert ntk.shape == (3, 3)
  ntk_fn = empirical_ntk_fn(apply_fn)
  expected = sum(ntk_fn(X1, None, p) for p in nt_params) / 5
  assert_close(ntk, expected)


@pytest.mark.slow  # two Monte Carlo compilations, ~8 s
def test_batch_size_device_count_and_store_on_device_are_used():
  # Blocks of 2 x 2 examples (ragged: 3 = 2 + 1) use the same samples, so
  # they agree with the whole kernel to round-off; generators batch too.
  whole = list(monte_carlo_kernel_fn(init_fn, apply_fn, KEY, [1, 3])(X1))
  batched = monte_carlo_kernel_fn(init_fn, apply_fn, KEY, [1, 3],
                                  batch_size=2, device_count=0,
                                  store_on_device=False)
  estimates = list(batched(X1))
  assert batched.last_run == dict(total=3, computed=3, loaded=0)  # 2 + 1
  assert len(estimates) == 2
  for est, ref in zip(estimates, whole):
    assert type(est).__name__ == "MonteCarloKernel"
    assert est.ntk.devices() == {jax.local_devices(backend="cpu")[0]}
    for g in ("nngp", "ntk"):
      assert_close(getattr(est, g), getattr(ref, g))
  # device_count reaches ntcore.batch (conftest.py makes 2 CPU devices).
  too_many = monte_carlo_kernel_fn(init_fn, apply_fn, KEY, 3, batch_size=1,
                                   device_count=3)
  with pytest.raises(BatchError, match="device_count=3, but only 2"):
    too_many(X1, X2)


def test_sample_loop_memory_does_not_grow_with_n_samples():
  # XLA's own memory analysis of the whole compiled estimate: the loop holds
  # one sample's Jacobians plus the running sum, so 64 samples need about
  # the temporary memory of 1 (measured: 199 kB vs 207 kB), while
  # evaluating 8 samples at once holds 8 samples' Jacobians (1.7 MB). The
  # last line checks that the analysis sees the Jacobians at all.
  net_init, net_apply, _ = stax.serial(stax.Dense(64), stax.Relu(),
                                       stax.Dense(1))
  x = _normal(2, (16, 8))

  def temp_bytes(n_samples, chunk=None):
    mc = monte_carlo_kernel_fn(net_init, net_apply, KEY, n_samples,
                               _samples_per_chunk=chunk)
    compiled = jax.jit(lambda x: mc(x, None, ("nngp", "ntk"))).lower(
        x).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  one = temp_bytes(1)
  assert temp_bytes(64) < 1.5 * one
  assert temp_bytes(8, chunk=8) > 4 * one


@pytest.mark.parametrize("n_samples", [0, -2, 2.5, "10", True, [], [4, 0]])
def test_bad_n_samples_says_what_to_pass(n_samples):
  with pytest.raises(EstimatorArgumentError, match="positive int"):
    monte_carlo_kernel_fn(init_fn, apply_fn, KEY, n_samples)


def test_bad_chunk_size_says_what_to_pass():
  with pytest.raises(EstimatorArgumentError, match="positive int"):
    monte_carlo_kernel_fn(init_fn, apply_fn, KEY, 4, _samples_per_chunk=0)


def test_bad_call_arguments_are_rejected_before_sampling():
  kernel_fn = monte_carlo_kernel_fn(init_fn, apply_fn, KEY, [1, 2])
  with pytest.raises(EstimatorArgumentError, match="get="):
    kernel_fn(X1, X2, get=("ntk", "ntk"))
  with pytest.raises(EstimatorArgumentError, match="hashable"):
    kernel_fn(X1, X2, scale=[1., 2.])
  stax_like = monte_carlo_kernel_fn(init_fn, lambda p, x, **kw: x, KEY, 2)
  with pytest.raises(EstimatorArgumentError, match="rng="):
    stax_like(X1, X2, rng=KEY)


@pytest.mark.slow
def test_relu_network_converges_to_analytic_kernel():
  # One hidden layer of width 512, NTK parameterization, no bias. For such a
  # network the mean of the empirical kernels over initializations *is* the
  # infinite-width kernel (each kernel is an average over hidden units of
  # terms whose expectation is the analytic one), so the MC error is purely
  # statistical: each entry is a mean of n i.i.d. samples with some
  # per-sample standard deviation sigma, off by at most 5 sigma / sqrt(n)
  # except with probability < 1e-6 (central limit theorem).
  init, apply, kernel = stax.serial(stax.Dense(512), stax.Relu(),
                                    stax.Dense(1))
  x = _normal(2, (4, 3))
  exact = kernel(x, None, ("nngp", "ntk"))
  n_small, n_large = 16, 16384
  small, large = monte_carlo_kernel_fn(
      init, apply, random.PRNGKey(1), [n_small, n_large])(x, None)

  # NNGP sample f(x_i) f(x_j): f is Gaussian given the hidden layer, so
  # Var = K_ii K_jj + K_ij^2 (Isserlis), up to O(1/width) = O(0.2%).
  k = np.asarray(exact.nngp)
  sigma = np.sqrt(np.outer(np.diag(k), np.diag(k)) + k ** 2)
  err = np.abs(np.asarray(large.nngp) - k)
  assert np.all(err <= 5 * sigma / np.sqrt(n_large)), (
      f"NNGP relative error {np.max(err / np.abs(k)):.3g} exceeds "
      f"5 sigma / sqrt({n_large})")

  # NTK: sigma measured from 64 independent single draws (other keys); its
  # own relative error ~ 1/sqrt(2 * 64) ~ 9% is inside the 5-sigma margin.
  ntk_fn = empirical_ntk_fn(apply)
  draws = jax.vmap(lambda key: ntk_fn(x, None, init(key, x.shape)[1]))(
      random.split(random.PRNGKey(99), 64))
  sigma = np.std(np.asarray(draws), axis=0, ddof=1)
  err = np.abs(np.asarray(large.ntk) - np.asarray(exact.ntk))
  assert np.all(err <= 5 * sigma / np.sqrt(n_large)), (
      f"NTK relative error {np.max(err / np.abs(exact.ntk)):.3g} exceeds "
      f"5 sigma / sqrt({n_large})")

  # 1024x the samples shrinks the typical error 32x. The NTK's fluctuations
  # are mostly one common scale factor, so its error is ~ one |Gaussian|:
  # a reversal needs the 16-sample error 32x below typical (probability
  # ~ (2/pi) / 32 = 2% for another key; with this key it is ~14x smaller).
  for g in ("nngp", "ntk"):
    e_small = np.linalg.norm(getattr(small, g) - getattr(exact, g))
    e_large = np.linalg.norm(getattr(large, g) - getattr(exact, g))
    assert e_large < e_small, (g, e_small, e_large)
