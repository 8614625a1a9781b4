"""XLA's temporaries: a deep network's kernel does not grow them with its
depth; the Cholesky factor of GP inference is never copied.

Each nonlinearity's NTK is stored (`kernel_ops.stored`); without that XLA
fuses the NTK recursion of the whole network into one loop at its end and
keeps every layer's factor and NNGP live until then. Checked with XLA's own
`memory_analysis` of the compiled program, and against the same program
without the stores, so that the check can fail.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntcore import kernel_ops, stax
from ntcore.dynamics import _linalg, _posterior

N = 256


def _temp_bytes(depth):
  layers = []
  for _ in range(depth):
    layers += [stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu()]
  _, _, kernel_fn = stax.serial(*layers, stax.Dense(1))
  x = jax.random.normal(jax.random.PRNGKey(0), (N, 8), jnp.float32)
  compiled = jax.jit(lambda x: kernel_fn(x, None, ("nngp", "ntk"))).lower(
      x).compile()
  analysis = compiled.memory_analysis()
  if analysis is None:
    pytest.skip("this backend reports no memory analysis")
  return analysis.temp_size_in_bytes


def test_temporaries_do_not_grow_with_depth(monkeypatch):
  array = N * N * 4
  # Measured: about 10 arrays of N x N at any depth from 6 up.
  shallow, deep = _temp_bytes(6), _temp_bytes(12)
  assert deep <= shallow + array / 2, (shallow / array, deep / array)
  # The control: without the stores, each layer adds about 4 arrays.
  monkeypatch.setattr(kernel_ops, "stored", lambda x: x)
  unstored = _temp_bytes(12) - _temp_bytes(6)
  assert unstored > 6 * 2 * array, unstored / array


def _temps(lowered):
  analysis = lowered.compile().memory_analysis()
  if analysis is None:
    pytest.skip("this backend reports no memory analysis")
  return analysis.temp_size_in_bytes


def test_cholesky_factor_is_written_in_place_and_solved_uncopied():
  n = 512
  a = np.random.default_rng(0).standard_normal((n, n + 8)).astype(np.float32)
  k = jnp.asarray(a @ a.T / n)
  factor = _linalg.cholesky(k, _linalg.Regularizer(1e-3), "k", "it")
  k64 = np.asarray(k, np.float64)
  np.testing.assert_allclose(
      np.asarray(factor),
      np.linalg.cholesky(k64 + 1e-3 * np.trace(k64) / n * np.eye(n)),
      rtol=0, atol=2e-4)
  assert factor.format.layout.major_to_minor == (1, 0)  # column-major
  matrix = n * n * 4
  in_place = _linalg._cholesky_column_major(factor.devices().pop())
  assert _temps(in_place.lower(k, 1e-3, absolute=False)) < matrix / 8
  # The control: a row-major factor is LAPACK's output copied.
  assert _temps(_linalg._cholesky.lower(k, 1e-3, absolute=False)) >= matrix
  k_td, k_tt = k[:64], k[:64, :64]
  cov = lambda f: _temps(_posterior._gp_cov.lower(f, k_td, k_tt,
                                                  test_shape=(64,)))
  assert cov(factor) < matrix / 2  # (n, 64) solves only
  assert cov(jnp.array(np.asarray(factor))) >= matrix
