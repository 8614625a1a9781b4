"""A transformer block out of attention, LayerNorm, residual sums and an MLP.

`x -> x + Attention(x) -> LayerNorm -> h + MLP(h) -> LayerNorm`: the core
combinators compose with the plugin's layers (NT's numbers for this block
are in `test_attention.py`); here the suite, Monte Carlo, and the error
for a residual sum whose kernel is not defined.
"""

import jax
import numpy as np
import pytest

import ntcore.testing
from ntcore import KernelRequirementError, stax

rng = np.random.default_rng(5)


def block(width, n_key=8, n_heads=2, nonlinearity=stax.Relu):
  attention = stax.GlobalSelfAttention(width, n_key, width, n_heads,
                                       pos_emb_type="SUM", b_std=0.1)
  mlp = stax.serial(stax.Dense(width, b_std=0.1), nonlinearity(),
                    stax.Dense(width, W_std=1.2))
  return [stax.FanOut(2), stax.parallel(attention, stax.Identity()),
          stax.FanInSum(), stax.LayerNorm(),
          stax.FanOut(2), stax.parallel(mlp, stax.Identity()),
          stax.FanInSum(), stax.LayerNorm()]


def transformer(width, **kw):
  return stax.serial(stax.Dense(width, b_std=0.1), *block(width, **kw),
                     stax.GlobalAvgPool(),
                     stax.Dense(8, b_std=0.1))


def test_block_passes_the_conformance_suite():
  # Erf: the suite compares x-with-itself entries computed two ways, and
  # Relu's dual amplifies their round-off (sqrt(eps) per Relu, compounding).
  x = rng.normal(size=(3, 4, 2))
  ntcore.testing.check_kernel_fn(transformer(4, nonlinearity=stax.Erf), x)


@pytest.mark.slow
def test_block_agrees_with_monte_carlo():
  # Error budget as in test_monte_carlo.py: z = 6 standard errors, plus the
  # finite-width bias of a network whose attention and LayerNorm see
  # empirical kernels of width 128 (relative variance <= 2 / 128, entering
  # at most cubically: 6 / 128) and keys of width 128 (4 g^2 / 128 with
  # g <= 1 after LayerNorm). One block keeps the compilation short.
  x1, x2 = rng.normal(size=(2, 3, 2)), rng.normal(size=(2, 3, 2))
  net = stax.serial(stax.Dense(128, b_std=0.1),
                    *block(128, n_key=128, n_heads=1),
                    stax.GlobalAvgPool(), stax.Dense(8, b_std=0.1))
  ntcore.testing.check_monte_carlo(net, x1, x2, key=jax.random.PRNGKey(9),
                                   n_samples=128, bias=10 / 128)


def test_nonlinearity_after_a_sum_with_a_non_gaussian_branch_says_why():
  # Residual around a Relu: the sum of Relu(z) and z is not Gaussian, so a
  # Relu after it has no kernel given only second moments.
  net = stax.serial(stax.Dense(4), stax.FanOut(2),
                    stax.parallel(stax.Relu(), stax.Identity()),
                    stax.FanInSum(), stax.Relu())
  with pytest.raises(KernelRequirementError,
                     match="sum of a non-Gaussian and a Gaussian branch"):
    net[2](rng.normal(size=(2, 3, 2)), None)
  with pytest.raises(KernelRequirementError, match="End every branch"):
    stax.serial(stax.Dense(4), stax.FanOut(2),
                stax.parallel(stax.Relu(), stax.Identity()), stax.FanInSum(),
                stax.LayerNorm())[2](rng.normal(size=(2, 3, 2)), None)


def test_an_affine_layer_after_the_sum_fixes_it():
  net = stax.serial(stax.Dense(4), stax.FanOut(2),
                    stax.parallel(stax.Relu(), stax.Identity()),
                    stax.FanInSum(), stax.Dense(4), stax.Relu())
  nngp = net[2](rng.normal(size=(2, 3, 2)), None, "nngp")
  assert nngp.shape == (2, 2, 3, 3) and np.all(np.isfinite(nngp))
