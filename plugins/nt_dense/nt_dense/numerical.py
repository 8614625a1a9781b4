"""Named smooth nonlinearities without a closed-form kernel: by quadrature.

NT 0.6.5 has none of these. Each is the Gauss-Hermite rule of
`ElementwiseNumerical` with the function's analytic derivative, but in the
symmetric frame (`custom.quadrature_dual`): with no NT numbers to match, the
frame that makes kernels symmetric to round-off and is the more accurate
near correlation 1. The nearest complex singularity of the function,
relative to the input's standard deviation, sets how fast the quadrature
converges: `tanh` has poles at `+-i pi/2`, the logistic family (`sigmoid`,
`softplus`, `swish`) at `+-i pi`, and `tanh(s z)` tends to a step as `s`
grows. Worst relative errors NNGP / NTK over correlations in {0, 0.5, 0.95,
0.999, 1, -0.95} and variance ratios 1 and 4, against deg=600:

    input variance       1              2              4             8
    Tanh (deg=100)    1e-14 / 2e-11  7e-11 / 8e-8   4e-8 / 3e-5   4e-6 / 2e-3
    Sigmoid (deg=64)  4e-15 / 3e-15  4e-15 / 1e-12  4e-12 / 9e-9  4e-9 / 5e-6
    Softplus (deg=64) 3e-15 / 4e-15  6e-15 / 4e-15  2e-11 / 4e-12 2e-8 / 4e-9
    Swish (deg=64)    4e-15 / 4e-15  2e-13 / 2e-14  9e-10 / 2e-10 4e-7 / 3e-7

Raise `deg` for larger variances (cost: `2 deg^2` evaluations per entry).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nt_dense.custom import quadrature_layer


def _tanh_prime(x):
  return 1 - jnp.tanh(x) ** 2


def _sigmoid_prime(x):
  s = jax.nn.sigmoid(x)
  return s * (1 - s)


def _swish_prime(x):
  s = jax.nn.sigmoid(x)
  return s * (1 + x * (1 - s))


def Tanh(deg: int = 100):
  """Hyperbolic tangent `tanh(x)`; kernel by Gauss-Hermite quadrature.

  Kernel: `E[tanh(u) tanh(v)]`, NTK factor `E[sech^2(u) sech^2(v)]`, both by
  a `deg x deg` Gauss-Hermite rule (accuracy: module docstring).

  Args:
    deg: quadrature nodes per dimension.
  """
  return quadrature_layer("Tanh", jnp.tanh, deg, _tanh_prime, "symmetric")


def Sigmoid(deg: int = 64):
  """Logistic sigmoid `1 / (1 + exp(-x))`; kernel by Gauss-Hermite quadrature.

  Kernel: `E[s(u) s(v)]`, NTK factor `E[s'(u) s'(v)]` with `s' = s (1 - s)`,
  by a `deg x deg` Gauss-Hermite rule. NT's `Sigmoid_like` is a scaled erf
  with a closed form; this is the logistic function itself.

  Args:
    deg: quadrature nodes per dimension.
  """
  return quadrature_layer("Sigmoid", jax.nn.sigmoid, deg, _sigmoid_prime,
                          "symmetric")


def Softplus(deg: int = 64):
  """Softplus `log(1 + exp(x))`; kernel by Gauss-Hermite quadrature.

  Kernel: `E[sp(u) sp(v)]`, NTK factor `E[s(u) s(v)]` with `s` the logistic
  sigmoid (`sp' = s`), by a `deg x deg` Gauss-Hermite rule.

  Args:
    deg: quadrature nodes per dimension.
  """
  return quadrature_layer("Softplus", jax.nn.softplus, deg, jax.nn.sigmoid,
                          "symmetric")


def Swish(deg: int = 64):
  """Swish / SiLU `x * sigmoid(x)`; kernel by Gauss-Hermite quadrature.

  Kernel: `E[sw(u) sw(v)]`, NTK factor `E[sw'(u) sw'(v)]` with
  `sw' = s (1 + x (1 - s))`, by a `deg x deg` Gauss-Hermite rule.

  Args:
    deg: quadrature nodes per dimension.
  """
  return quadrature_layer("Swish", jax.nn.silu, deg, _swish_prime,
                          "symmetric")
