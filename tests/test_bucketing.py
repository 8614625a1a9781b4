"""Small calls at new input sizes pad their batch to a few bucket sizes.

A shared program is compiled per input shape, so without buckets a loop
over training-set sizes compiles once per size (`dispatch.bucket`). Counted
with `jax.monitoring` compile events (the `compiles` fixture, conftest.py).
"""

import jax
import numpy as np
import pytest

from ntcore import stax
from ntcore._network import dispatch

RTOL = 1e-10
DATA = np.random.default_rng(0).normal(size=(40, 6))


def _net(w_std=1.4):
  return stax.serial(stax.Dense(16, W_std=w_std, b_std=0.1), stax.Relu(),
                     stax.Dense(1, W_std=w_std, b_std=0.1))[2]


@pytest.mark.parametrize("n, size", [
    (0, 0), (1, 1), (8, 8), (9, 9), (16, 16), (17, 18), (33, 36),
    (100, 104), (1000, 1024), (1025, 1152)])
def test_bucket_sizes(n, size):
  assert dispatch.bucket(n) == size


def test_buckets_are_eight_per_octave_and_pad_under_an_eighth():
  sizes = [dispatch.bucket(n) for n in range(1, 4097)]
  assert all(n <= s < n + max(n / 8, 1) for n, s in zip(range(1, 4097), sizes))
  assert len(set(s for s in sizes if 512 < s <= 1024)) == 8


def test_a_loop_over_sizes_compiles_once_per_bucket(share, compiles):
  kernel_fn = _net()
  kernel_fn(DATA[:3], None, "ntk")  # warm up input casting
  compiles.clear()
  for n in range(17, 33):  # 16 sizes, 8 buckets: 18, 20, ..., 32
    out = kernel_fn(DATA[:n], None, ("nngp", "ntk"))
    assert out.nngp.shape == out.ntk.shape == (n, n)
  assert len(compiles) == 8, len(compiles)


def test_padded_results_are_those_of_the_given_sizes(share):
  kernel_fn = _net()
  x1, x2 = DATA[:17], DATA[20:31]  # buckets 18 and 11 (as it is)
  got = kernel_fn(x1, x2, ("nngp", "ntk"))
  want = jax.jit(kernel_fn, static_argnames="get")(x1, x2, ("nngp", "ntk"))
  for g, w in zip(got, want):
    assert g.shape == w.shape == (17, 11)
    np.testing.assert_allclose(g, w, rtol=RTOL)
  same = kernel_fn(x1, None, "nngp")  # x2 = x1, padded with x1[0]
  want = jax.jit(kernel_fn, static_argnames="get")(x1, None, "nngp")
  np.testing.assert_allclose(same, want, rtol=RTOL)
  # Same-example entries from the diagonal formula, as without padding.
  np.testing.assert_allclose(np.diag(same), kernel_fn(x1).cov1, rtol=1e-14)


def test_a_whole_kernel_is_not_padded(share, compiles):
  # `get=None` returns a Kernel (cov1, shapes...): computed at its own size.
  kernel_fn = _net()
  k = kernel_fn(DATA[:17])
  assert k.nngp.shape == (17, 17) and k.cov1.shape == (17,)


def test_a_network_of_traced_hyper_parameters_is_computed_at_its_size(share):
  # `grad` over W_std (as the marginal-likelihood fits do): the network runs
  # its own program inside the trace, at the given size, and the gradient
  # is that of the unpadded kernel.
  x = DATA[:17]

  def trace(w_std):
    return _net(w_std)(x, None, "nngp").trace()

  got = jax.grad(trace)(1.4)
  step = 1e-6
  want = (trace(1.4 + step) - trace(1.4 - step)) / (2 * step)
  np.testing.assert_allclose(got, want, rtol=1e-4)
  assert _net(1.4)(x, None, "nngp").shape == (17, 17)
