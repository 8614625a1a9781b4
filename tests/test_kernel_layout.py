"""The `Kernel`'s layout methods, and requirements as data (`Need`, `Diag`)."""

import pathlib
import re

import jax.numpy as jnp
import numpy as np
import pytest

from ntcore import Diag, Kernel, KernelRequirementError, Need, ShapeError
from ntcore._network import inputs

ROOT = pathlib.Path(__file__).resolve().parents[1]
RNG = np.random.RandomState(0)
X1 = RNG.randn(3, 4, 5, 2)
X2 = RNG.randn(2, 4, 5, 2)


def kernel(x1=X1, x2=X2, **kw):
  args = dict(diagonal_batch=False, diagonal_spatial=False, compute_ntk=True,
              batch_axis=0, channel_axis=-1)
  args.update(kw)
  return inputs.inputs_to_kernel(jnp.asarray(x1), None if x2 is None
                                 else jnp.asarray(x2), **args)


def test_batch_ndim_and_arrays_follow_diagonal_batch():
  k = kernel()
  assert [(f, b) for f, _, b in k.arrays()] == [("nngp", 2), ("cov1", 2),
                                                ("cov2", 2)]  # ntk is 0-d
  kd = kernel(diagonal_batch=True)
  assert kd.batch_ndim("cov1") == 1 and kd.batch_ndim("nngp") == 2
  assert kd.cov1.shape == (3, 4, 4, 5, 5)


def test_reversed_storage_round_trips_and_names_its_groups():
  k = kernel()
  r = k.reverse()
  assert r.is_reversed and r.stored_dims() == [1, 0]
  assert r.stored_spatial_axes() == [2, 1] and r.spatial_shape() == (4, 5)
  np.testing.assert_array_equal(r.nngp, np.transpose(k.nngp, (0, 1, 4, 5, 2, 3)))
  np.testing.assert_array_equal(r.natural().nngp, k.nngp)
  # store: a rule that computed in the reversed order, asked to keep it.
  assert r.store(r.stored_dims(), None, True).nngp is r.nngp


def test_same_positions_and_pair_rebuild_the_covariance_of_a_product():
  k = kernel()
  var1 = k.variances("cov1")
  assert var1.shape == (3, 4, 5)
  np.testing.assert_allclose(var1, np.einsum("nhwc,nhwc->nhw", X1, X1) / 2,
                             rtol=1e-13)
  diag = Kernel.same_positions(k.nngp, 2)
  np.testing.assert_array_equal(
      Kernel.same_positions(Kernel.embed_same_positions(diag, 2), 2), diag)
  a, b = k.pair(var1, k.variances("cov2"))
  assert (a * b).shape == k.nngp.shape
  np.testing.assert_allclose((a * b)[1, 0, 2, 3, 1, 4],
                             var1[1, 2, 1] * k.variances("cov2")[0, 3, 4])


def test_mask_positions_fill_the_unmasked_batch():
  x = X1.copy()
  x[0, 1, 2] = 7.
  k = kernel(x, X2, mask_constant=7.)
  p1, p2 = k.mask_positions()
  assert p1.shape == (3, 4, 5) and p2.shape == (2, 4, 5)
  assert p1[0, 1, 2] and p1.sum() == 1 and not p2.any()
  assert kernel().mask_positions() == (None, None)


def test_select_takes_one_sequence_and_getitem_does_not():
  k = kernel()
  out = k.select((slice(None), [3, 0]))
  np.testing.assert_array_equal(out.nngp, k.nngp[:, :, [3, 0]][:, :, :, [3, 0]])
  assert out.shape1 == (3, 2, 5, 2)
  with pytest.raises(ShapeError, match="int, a slice"):
    k[:, [3, 0]]
  with pytest.raises(ShapeError, match="more than one axis"):
    k.select((slice(None), [0], [1]))


def test_dot_general_pairing_the_batch_axis_checks_both_sizes():
  k = kernel()
  dn = (((), ()), ((0,), (0,)))
  out = k.dot_general(np.ones(3), np.ones(2), False, dn)
  assert out.nngp.shape == k.nngp.shape
  with pytest.raises(KernelRequirementError, match="both have 2 examples; got 3 and 2"):
    k.dot_general(np.ones(2), np.ones(2), False, dn)
  with pytest.raises(KernelRequirementError, match="have 2 and 3 examples"):
    k.dot_general(np.ones(2), np.ones(3), False, dn)


@pytest.mark.parametrize("diag, want", [
    (Diag.PRESERVES, (Need.DIAGONAL, Need.FULL, Need.FULL)),
    (Diag.NEEDS_FULL, (Need.FULL_UNLESS_ZERO, Need.FULL, Need.FULL)),
    (Diag.REMOVES, (Need.DIAGONAL,) * 3),
    (Diag.REMOVES_FULL, (Need.FULL_UNLESS_ZERO,) * 3),
    (Diag.ZEROES_OFF_DIAGONAL, (Need.DIAGONAL, Need.DIAGONAL, Need.FULL)),
])
def test_input_need_of_each_diag(diag, want):
  outputs = (Need.DIAGONAL, Need.FULL_UNLESS_ZERO, Need.FULL)
  assert tuple(diag.input_need(o) for o in outputs) == want


def test_the_plugin_guide_documents_every_diag_value_and_the_stored_order():
  text = (ROOT / "docs" / "writing-a-plugin.md").read_text()
  rows = re.findall(r"^\| `(\w+)` \|", text, flags=re.M)
  assert {d.name for d in Diag} <= set(rows)
  assert "is_reversed" in text and "stored_dims" in text
