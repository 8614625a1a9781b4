"""Empirical kernels: `vmap_axes` that do not fit are one clear ShapeError."""

import jax
import numpy as np
import pytest

from ntcore import ShapeError

from nt_montecarlo import _axes
from nt_montecarlo.ntk import empirical_ntk_fn

X = np.random.default_rng(0).normal(size=(4, 5))
W = np.random.default_rng(1).normal(size=(5, 2))


def f(params, x, **kwargs):
  del kwargs
  return jax.numpy.tanh(x @ params)


@pytest.mark.parametrize("implementation", [1, 2, 3])
@pytest.mark.parametrize("vmap_axes, says", [
    (5, "vmap_axes in_axes (of x1)=5 is out of range for an array with 2 "
        "axes"),
    (-3, "in_axes (of x1)=-3 is out of range"),
    ((0, 2, None), "out_axes (of f(x1))=2 is out of range"),
    (1, "the named axes have different sizes: x1 of shape (4, 5) has size 5 "
        "on axis 1; f(x1) of shape (4, 2) has size 2 on axis 1"),
    ((0, 0, {"scale": 3}), "kwargs_axes['scale']=3 is out of range"),
])
def test_bad_vmap_axes_name_the_entry_and_the_range(implementation, vmap_axes,
                                                   says):
  ntk_fn = empirical_ntk_fn(f, vmap_axes=vmap_axes,
                            implementation=implementation)
  with pytest.raises(ShapeError) as info:
    ntk_fn(X, None, W, scale=np.ones((4, 1)))
  assert says in str(info.value)
  assert isinstance(info.value, ValueError)


def test_good_vmap_axes_match_no_vmap_axes():
  want = empirical_ntk_fn(f)(X, None, W)
  for axes in (0, -2, (0, 0, None)):
    got = empirical_ntk_fn(f, vmap_axes=axes)(X, None, W)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_vmap_axis_must_be_an_int():
  with pytest.raises(ShapeError, match="must be an int axis or None, got str"):
    _axes.vmap_axis("0", 2, "vmap_axes")
