"""Networks and inputs shared by the NTK benchmark and the AUTO calibration.

Written directly in `jax.numpy`/`lax` so the benchmark needs no layer plugin.
float32, the usual training precision.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _normal(seed, shape, scale=1.):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.standard_normal(shape) * scale, jnp.float32)


def fc(width=512, depth=3, d_in=64, n_out=10):
  """A ReLU MLP, NTK parameterization: `(params, apply_fn, input_shape)`."""
  dims = [d_in] + [width] * depth + [n_out]
  params = [(_normal(2 * i, (a, b)), _normal(2 * i + 1, (1, b)))
            for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))]

  def apply_fn(params, x):
    for i, (w, b) in enumerate(params):
      x = x @ w / np.sqrt(w.shape[0]) + 0.1 * b
      if i < len(params) - 1:
        x = jax.nn.relu(x)
    return x

  return params, apply_fn, (d_in,)


def cnn(channels=32, depth=2, size=16, n_out=10):
  """A ReLU CNN (3x3 SAME convolutions, NHWC), global average pooling and a
  dense readout: `(params, apply_fn, input_shape)`."""
  chans = [3] + [channels] * depth
  params = [(_normal(2 * i, (3, 3, a, b)), _normal(2 * i + 1, (b,)))
            for i, (a, b) in enumerate(zip(chans[:-1], chans[1:]))]
  params.append((_normal(99, (channels, n_out)), _normal(98, (1, n_out))))
  dims = ("NHWC", "HWIO", "NHWC")

  def apply_fn(params, x):
    for w, b in params[:-1]:
      x = lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                   dimension_numbers=dims)
      x = jax.nn.relu(x / np.sqrt(9 * w.shape[2]) + 0.1 * b.reshape(1, 1, 1,
                                                                    -1))
    w, b = params[-1]
    return jnp.mean(x, axis=(1, 2)) @ w / np.sqrt(w.shape[0]) + 0.1 * b

  return params, apply_fn, (size, size, 3)


def inputs(shape, n, seed):
  return _normal(seed, (n,) + tuple(shape))
