"""The core's conformance suite over every layer nt-conv registers.

A new layer gets the whole suite by adding one line to `CASES`; a test
checks that every registered layer has one. Each case is the layer placed
in a small network on 5x4 images: after a convolution and a nonlinearity
(so it sees a Gaussian-fed, full spatial kernel stored reversed, as NT
stores it), and before a global pool and a Dense readout (so the outputs
are `(n1, n2)` matrices the suite can test for symmetry and PSD). The Monte
Carlo comparison lives in `test_monte_carlo.py`.
"""

import functools

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import ntcore.testing
from ntcore import get_registry, stax

# name -> (layer factory, position): "first" (on the raw inputs, before a
# Relu and the readout), "middle" (after Conv + Erf), "last" (after Conv + Erf,
# with its own output read out by Dense), or "finite-only".
CASES = {
    "Conv": (lambda: stax.Conv(3, (3, 2), strides=(2, 1), padding="SAME",
                               W_std=1.3, b_std=0.2), "first"),
    "ConvTranspose": (lambda: stax.ConvTranspose(
        3, (3, 3), strides=(2, 1), padding="VALID", b_std=0.1), "first"),
    "ConvLocal": (lambda: stax.ConvLocal(3, (2, 3), padding="SAME",
                                         b_std=0.1), "first"),
    "AvgPool": (lambda: stax.AvgPool((2, 2), strides=(1, 2), padding="SAME",
                                     normalize_edges=True), "middle"),
    "SumPool": (lambda: stax.SumPool((3, 2), padding="CIRCULAR"), "middle"),
    "GlobalAvgPool": (stax.from_registry("GlobalAvgPool"), "last"),
    "GlobalSumPool": (stax.from_registry("GlobalSumPool"), "last"),
    "Flatten": (stax.from_registry("Flatten"), "last"),
    "ImageResize": (lambda: stax.ImageResize((-1, 3, 6, -1), "linear"),
                    "middle"),
    "Index": (lambda: stax.Index(stax.Slice[:, 1:4, ::2]), "middle"),
    "DotGeneral": (lambda: stax.DotGeneral(rhs=-1.5), "middle"),
    "Slice": (None, "helper"),
    "MaxPool": (lambda: stax.MaxPool((2, 2), strides=(1, 1)), "finite-only"),
}


def network(name, width=4):
  make, where = CASES[name]
  conv = stax.Conv(width, (3, 3), padding="SAME", W_std=1.4, b_std=0.1)
  readout = stax.Dense(1, W_std=1.2, b_std=0.1)
  if where == "first":
    return stax.serial(make(), stax.Relu(), stax.GlobalAvgPool(), readout)
  if where == "middle":
    return stax.serial(conv, stax.Erf(), make(), stax.GlobalAvgPool(),
                       readout)
  return stax.serial(conv, stax.Erf(), make(), readout)



# One network per configuration across hypothesis examples: each network's
# kernel_fn compiles once, and the examples then reuse that program.
cached_network = functools.lru_cache(maxsize=None)(network)

def test_every_registered_layer_has_a_case():
  ntcore.testing.check_every_layer_has_a_case("nt-conv", CASES)


def test_registry_attributes_layers_to_nt_conv():
  layers = get_registry().layers
  for name, (_, where) in CASES.items():
    spec = layers.get(name)
    assert spec.plugin == "nt-conv"
    assert (spec.kernel == "finite-only") == (where == "finite-only")


rng = np.random.default_rng(0)
X1 = rng.normal(size=(5, 5, 4, 2))
X2 = rng.normal(size=(4, 5, 4, 2))
ANALYTIC = sorted(n for n, (_, w) in CASES.items()
                  if w not in ("helper", "finite-only"))


@pytest.mark.parametrize("name", ANALYTIC)
def test_kernel_properties(name):
  ntcore.testing.check_kernel_fn(network(name), X1, None)
  ntcore.testing.check_kernel_fn(network(name), X1, X2)


@pytest.mark.parametrize("name", ANALYTIC)
def test_finite_network_runs_and_matches_the_kernel_shapes(name):
  init_fn, apply_fn, kernel_fn = network(name)
  out_shape, params = init_fn(jax.random.PRNGKey(0), X1.shape)
  y = apply_fn(params, X1)
  assert y.shape == tuple(out_shape) == (5, 1)
  assert np.all(np.isfinite(y))
  assert kernel_fn(X1, X2, "nngp").shape == (5, 4)


def test_finite_only_and_helper_cases():
  init_fn, apply_fn, _ = CASES["MaxPool"][0]()
  out_shape, params = init_fn(jax.random.PRNGKey(0), X1.shape)
  assert apply_fn(params, X1).shape == tuple(out_shape) == (5, 4, 3, 2)
  assert stax.Slice[1, :, ::2] == (1, slice(None), slice(None, None, 2))


images = hnp.arrays(np.float64, (3, 4, 3, 2), elements=st.floats(
    -3, 3, allow_nan=False, allow_subnormal=False))


@pytest.mark.parametrize("name", ANALYTIC)
@settings(max_examples=6, deadline=None)
@given(x=images, scale=st.sampled_from([0., 1e-6, 1.]))
def test_psd_and_finite_for_random_tiny_and_zero_images(name, x, scale):
  x = x.copy()
  x[0] *= scale  # a zero-norm or tiny-norm image among normal ones
  _, _, kernel_fn = cached_network(name, width=2)
  for m in kernel_fn(x, None, ("nngp", "ntk")):
    m = np.asarray(m)
    assert np.all(np.isfinite(m)), f"{name}: non-finite kernel for {x}"
    np.testing.assert_allclose(m, m.T, rtol=1e-9, atol=1e-12)
    assert ntcore.testing.psd_violation(m) < 1e-6
