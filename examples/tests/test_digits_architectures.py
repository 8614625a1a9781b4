"""digits_architectures.py: NNGP/NTK inference of FC, ConvOnly and WRN on
scikit-learn's digits is far above chance and improves with more data (NT
paper Figure 3), at a small size. The architectures' ordering is reported
by the script, not asserted."""

import numpy as np
import pytest


@pytest.mark.slow
def test_every_kernel_beats_chance_and_improves_with_data(example):
  r = example("digits_architectures").run(sizes=(10, 40), n_test=50,
                                          echo=lambda s: None)
  assert set(r["acc"]) == {f"{m} {k}" for m in ("FC", "ConvOnly", "WRN")
                           for k in ("NNGP", "NTK")} | {"RBF SVM"}
  for name, (small, large) in r["acc"].items():
    # Chance is 0.1; 40 examples (4 a class) already give 0.6-0.75.
    assert large >= 0.4, name
    assert large > small, name


def test_kernels_in_tiles_equal_one_call(example):
  mod = example("digits_architectures")
  x_tr, _, x_te, _ = mod.digits(7, 5)
  _, _, kernel_fn = mod.architectures()["ConvOnly"]
  k_dd, k_td = mod.kernels(kernel_fn, x_tr, x_te, block=3)
  whole = kernel_fn(x_tr, None, ("nngp", "ntk"))
  cross = kernel_fn(x_te, x_tr, ("nngp", "ntk"))
  for g in ("nngp", "ntk"):
    np.testing.assert_allclose(getattr(k_dd, g), getattr(whole, g),
                               rtol=1e-12)
    np.testing.assert_allclose(getattr(k_td, g), getattr(cross, g),
                               rtol=1e-12)


def test_shifted_digits_keep_their_pixels_inside_the_canvas(example):
  mod = example("digits_architectures")
  x8, l8, _, _ = mod.digits(30, 1)
  x16, l16, _, _ = mod.digits(30, 1, canvas=16)
  assert x16.shape == (30, 16, 16, 1)
  np.testing.assert_array_equal(l8, l16)
  np.testing.assert_allclose(x16.sum(axis=(1, 2, 3)), x8.sum(axis=(1, 2, 3)))
  # The offsets differ: the images' centres of mass are spread out.
  rows = np.arange(16)[None, :]
  centre = (x16[..., 0].sum(2) * rows).sum(1) / x16[..., 0].sum((1, 2))
  assert centre.std() > 1
