"""NNGP and NTK against Monte Carlo estimates over wide finite networks.

Every network is `Conv -> Relu -> <layer under test> -> readout`: the first
convolution of the inputs has exactly Gaussian pre-activations at any width,
and everything after the Relu is linear in its input, so the expectation of
the empirical NNGP (and, layers being independent, of the empirical NTK) is
the analytic kernel exactly; the only error is sampling error. So `bias=0`
and the tolerance is `z` standard errors measured from 16 independent groups
of samples (`ntcore.testing.check_monte_carlo`; z = 6 fails a correct entry
with probability ~2e-5). Images are 4x4 with 2 channels, widths 32-64 and
256 samples, which keeps each test within seconds on a CPU.
"""

import jax
import numpy as np
import pytest

import ntcore.testing
from ntcore import stax

rng = np.random.default_rng(1)
X1 = rng.normal(size=(3, 4, 4, 2))
X2 = rng.normal(size=(2, 4, 4, 2))
WIDTH = 48


def first(**kwargs):
  kw = dict(padding="SAME", W_std=1.5, b_std=0.2)
  kw.update(kwargs)
  return stax.Conv(WIDTH, (3, 3), **kw)


def readout():
  return stax.Dense(1, W_std=1.3, b_std=0.1)


NETWORKS = {
    "conv_gap": lambda: [first(), stax.Relu(), stax.GlobalAvgPool(), readout()],
    "conv_strided_valid_flatten": lambda: [
        first(padding="VALID", strides=(2, 1)), stax.Relu(), stax.Flatten(),
        readout()],
    "conv_circular_gsp": lambda: [first(padding="CIRCULAR"), stax.Relu(),
                                  stax.GlobalSumPool(), readout()],
    "conv_standard": lambda: [
        first(parameterization="standard"), stax.Relu(),
        stax.Conv(WIDTH, (2, 2), padding="SAME", parameterization="standard",
                  b_std=0.1),
        stax.GlobalSumPool(),
        stax.Dense(1, W_std=1.3, b_std=0.1, parameterization="standard")],
    "second_conv": lambda: [
        first(), stax.Relu(),
        stax.Conv(WIDTH, (3, 3), strides=(2, 2), padding="SAME", W_std=1.2,
                  b_std=0.1), stax.Flatten(), readout()],
    "conv_transpose": lambda: [
        first(), stax.Relu(),
        stax.ConvTranspose(WIDTH, (3, 3), strides=(2, 2), padding="SAME",
                           b_std=0.1), stax.GlobalAvgPool(), readout()],
    "conv_transpose_circular": lambda: [
        first(), stax.Relu(),
        stax.ConvTranspose(WIDTH, (2, 3), strides=(2, 1), padding="CIRCULAR"),
        stax.Flatten(), readout()],
    "conv_local": lambda: [
        stax.ConvLocal(WIDTH, (3, 3), padding="SAME", W_std=1.5, b_std=0.2),
        stax.Relu(),
        stax.ConvLocal(WIDTH, (2, 2), padding="VALID", b_std=0.1),
        stax.GlobalAvgPool(), readout()],
    "avgpool": lambda: [first(), stax.Relu(),
                        stax.AvgPool((2, 2), strides=(2, 2)), stax.Flatten(),
                        readout()],
    "sumpool_same_edges": lambda: [
        first(), stax.Relu(), stax.SumPool((3, 3), padding="SAME"),
        stax.GlobalAvgPool(), readout()],
    "avgpool_normalized_edges": lambda: [
        first(), stax.Relu(),
        stax.AvgPool((3, 2), padding="SAME", normalize_edges=True),
        stax.Flatten(), readout()],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_agrees_with_monte_carlo(name):
  net = stax.serial(*NETWORKS[name]())
  ntcore.testing.check_monte_carlo(net, X1, X2, key=jax.random.PRNGKey(7),
                                   n_samples=256, bias=0.)


@pytest.mark.slow
@pytest.mark.parametrize("shape, filt", [((7, 2), (3,)), ((3, 4, 3, 2), (2, 3, 2))],
                         ids=["1d", "3d"])
def test_other_dimensions_agree_with_monte_carlo(shape, filt):
  x1 = rng.normal(size=(3,) + shape)
  x2 = rng.normal(size=(2,) + shape)
  net = stax.serial(stax.Conv(WIDTH, filt, padding="SAME", W_std=1.5, b_std=0.2),
                    stax.Relu(),
                    stax.Conv(WIDTH, filt, padding="VALID", b_std=0.1),
                    stax.GlobalAvgPool(), readout())
  ntcore.testing.check_monte_carlo(net, x1, x2, key=jax.random.PRNGKey(8),
                                   n_samples=256, bias=0.)
