"""XLA's temporaries of a deep network's kernel do not grow with its depth.

Each nonlinearity's NTK is stored (`kernel_ops.stored`); without that XLA
fuses the NTK recursion of the whole network into one loop at its end and
keeps every layer's factor and NNGP live until then. Checked with XLA's own
`memory_analysis` of the compiled program, and against the same program
without the stores, so that the check can fail.
"""

import jax
import jax.numpy as jnp
import pytest

from ntcore import kernel_ops, stax

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
