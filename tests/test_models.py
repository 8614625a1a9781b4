"""`ntcore.models`: the NT paper's architectures and Myrtle, end to end.

The layers come from the installed plugins (nt-dense, nt-conv) through the
registry, as a user would get them. Each model is built, initialized,
applied and its kernel computed on tiny inputs: shapes, finiteness,
symmetric PSD NNGP, and a closed form where one is short.
"""

import jax
import numpy as np
import pytest

import ntcore.testing
from ntcore import models

rng = np.random.default_rng(0)
IMAGES = rng.normal(size=(3, 4, 4, 3))
IMAGES2 = rng.normal(size=(2, 4, 4, 3))

MODELS = {
    "WideResnet": (lambda: models.WideResnet(block_size=1, k=1, num_classes=4),
                   (3, 4)),
    "ConvOnly": (lambda: models.ConvOnly(depth=2, W_std=1.5, b_std=0.05,
                                         width=5), (3, 1)),
    "FullyConnected": (lambda: models.FullyConnected(
        depth=2, W_std=1.5, b_std=0.05, width=7), (3, 1)),
    "Myrtle": (lambda: models.Myrtle(depth=5, width=4), (3, 10)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_init_apply_and_kernel_shapes(name):
  build, out_shape = MODELS[name]
  init_fn, apply_fn, kernel_fn = build()
  shape, params = init_fn(jax.random.PRNGKey(0), IMAGES.shape)
  assert tuple(shape) == out_shape
  y = apply_fn(params, IMAGES)
  assert y.shape == out_shape and np.all(np.isfinite(y))
  k = kernel_fn(IMAGES, IMAGES2, ("nngp", "ntk"))
  for m in k:
    assert m.shape == (3, 2) and np.all(np.isfinite(m))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_nngp_and_ntk_are_symmetric_psd(name):
  _, _, kernel_fn = MODELS[name][0]()
  for m in kernel_fn(IMAGES, None, ("nngp", "ntk")):
    m = np.asarray(m)
    assert m.shape == (3, 3) and np.all(np.isfinite(m))
    np.testing.assert_allclose(m, m.T, rtol=1e-12)
    assert ntcore.testing.psd_violation(m) < 1e-10
    assert np.all(np.diag(m) > 0)


def test_fully_connected_is_the_arc_cosine_recursion():
  # Flatten, Dense, Relu, Dense: nngp = W^2 E[relu(u) relu(v)] + b^2 with
  # (u, v) ~ N(0, W^2 x.x'/d + b^2); E[relu relu] = sqrt(q1 q2) (sin t +
  # (pi - t) cos t) / (2 pi), cos t = q12 / sqrt(q1 q2) (Cho & Saul 2009).
  w, b = 1.5, 0.05
  _, _, kernel_fn = models.FullyConnected(depth=1, W_std=w, b_std=b)
  x = IMAGES.reshape(3, -1)
  q = w ** 2 * x @ x.T / x.shape[1] + b ** 2
  d = np.sqrt(np.diag(q))
  cos = np.clip(q / np.outer(d, d), -1, 1)
  t = np.arccos(cos)
  relu = np.outer(d, d) * (np.sin(t) + (np.pi - t) * cos) / (2 * np.pi)
  np.testing.assert_allclose(kernel_fn(IMAGES, None, "nngp"),
                             w ** 2 * relu + b ** 2, rtol=1e-12)


def test_conv_only_needs_only_diagonal_spatial_blocks():
  # No pooling: Flatten reads same-position covariances only (NT paper
  # section 3.1), so asking for the diagonal layout is allowed and changes
  # nothing.
  _, _, kernel_fn = MODELS["ConvOnly"][0]()
  np.testing.assert_allclose(
      kernel_fn(IMAGES, IMAGES2, "ntk", diagonal_spatial=True),
      kernel_fn(IMAGES, IMAGES2, "ntk"), rtol=1e-12)


def test_widths_do_not_change_the_kernel():
  # NTK parameterization: the infinite-width kernel ignores layer widths.
  a = models.Myrtle(depth=5, width=1)[2](IMAGES, None, "nngp")
  b = models.Myrtle(depth=5, width=64)[2](IMAGES, None, "nngp")
  np.testing.assert_allclose(a, b, rtol=1e-14)


def test_myrtle_depths():
  for depth in (7, 10):
    init_fn, _, _ = models.Myrtle(depth=depth)
    assert tuple(init_fn(jax.random.PRNGKey(0), IMAGES.shape)[0]) == (3, 10)
  with pytest.raises(ValueError, match=r"depths \[5, 7, 10\]"):
    models.Myrtle(depth=6)
