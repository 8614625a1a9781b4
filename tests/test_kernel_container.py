"""The `Kernel` container: NT's field order, methods and operators.

Each method is checked against an independent computation: the kernel of
the transformed inputs (sliced, indexed, permuted, contracted), computed
either by `kernel_fn` itself or by the definition `x1 . x2 / C` in numpy.
"""

import dataclasses
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ntcore import Kernel, KernelRequirementError, ShapeError, stax
from ntcore.kernel import GET_FIELDS, KernelArithmeticError

_spec = importlib.util.spec_from_file_location(
    "fakes", pathlib.Path(__file__).with_name("fakes.py"))
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)

rng = np.random.default_rng(3)
X1 = rng.normal(size=(4, 3, 5, 2))   # (n, h, w, c)
X2 = rng.normal(size=(3, 3, 5, 2))
X3 = rng.normal(size=(3, 2, 3, 4, 2))  # three spatial axes
EXACT = dict(rtol=1e-12, atol=1e-12)
ARRAYS = ("nngp", "ntk", "cov1", "cov2")

_, _, INPUT = stax.serial()  # the input kernel itself
_, _, NET = stax.serial(fakes.linear(), fakes.square(), fakes.linear())


def direct(x1, x2, diagonal_batch=False, diagonal_spatial=False,
           batch_axis=0, channel_axis=-1):
  """`mean_c x1[..., c] x2[..., c]` in Kernel layout, by the definition."""
  x1 = np.moveaxis(x1, (batch_axis, channel_axis), (0, -1))
  x2 = np.moveaxis(x2, (batch_axis, channel_axis), (0, -1))
  d = x1.ndim - 2
  full = np.tensordot(x1, x2, axes=([-1], [-1])) / x1.shape[-1]
  # (n1, s1.., n2, s2..) -> (n1, n2, s1_1, s2_1, s1_2, s2_2, ...)
  order = [0, d + 1] + [a for i in range(d) for a in (1 + i, d + 2 + i)]
  full = np.transpose(full, order)
  if diagonal_spatial:
    for i in range(d):
      full = np.moveaxis(np.diagonal(full, axis1=2 + i, axis2=3 + i), -1, 2 + i)
  if diagonal_batch:
    full = np.moveaxis(np.diagonal(full, axis1=0, axis2=1), -1, 0)
  return full


def assert_same(k, ref, fields=ARRAYS):
  for f in fields:
    a, b = getattr(k, f), getattr(ref, f)
    assert (a is None) == (b is None), f
    if a is not None:
      np.testing.assert_allclose(a, b, err_msg=f, **EXACT)


# --- fields ---------------------------------------------------------------

NT_ORDER = ["nngp", "ntk", "cov1", "cov2", "x1_is_x2", "is_gaussian",
            "is_reversed", "is_input", "diagonal_batch", "diagonal_spatial",
            "shape1", "shape2", "batch_axis", "channel_axis", "mask1", "mask2"]


def test_fields_in_nt_positional_order():
  assert [f.name for f in dataclasses.fields(Kernel)] == NT_ORDER
  k = Kernel(*[jnp.ones((2, 2)), None, jnp.ones(2), None, True, True, False,
               False, True, False, (2, 3), (2, 3), 0, 1, None, None])
  assert k.x1_is_x2 and k.is_gaussian and k.shape1 == (2, 3)
  assert k.channel_axis == 1 and k.mask1 is None


def test_asdict_astuple_and_get_fields():
  k = NET(X1, X2)
  d = k.asdict()
  assert list(d) == NT_ORDER == list(GET_FIELDS)
  assert all(d[name] is getattr(k, name) for name in NT_ORDER)
  assert all(a is b for a, b in zip(k.astuple(), d.values()))
  assert len(k.astuple()) == len(NT_ORDER)


def test_pytree_keeps_metadata_static_and_jits():
  k = NET(X1, X2)
  leaves, tree = jax.tree_util.tree_flatten(k)
  assert len(leaves) == 4  # nngp, ntk, cov1, cov2; masks are None
  back = jax.tree_util.tree_unflatten(tree, leaves)
  assert back.shape1 == k.shape1 and back.is_gaussian == k.is_gaussian

  @jax.jit
  def f(k):
    assert isinstance(k.shape1, tuple) and isinstance(k.x1_is_x2, bool)
    return (k * 2.).slice(slice(1, 3), slice(0, 2))[:, 1:]

  assert_same(f(k), (k * 2.).slice(slice(1, 3), slice(0, 2))[:, 1:])


# --- slice ----------------------------------------------------------------

@pytest.mark.parametrize("diagonal_batch", [True, False])
@pytest.mark.parametrize("diagonal_spatial", [True, False])
def test_slice_is_the_kernel_of_the_sliced_inputs(diagonal_batch,
                                                  diagonal_spatial):
  kw = dict(diagonal_batch=diagonal_batch, diagonal_spatial=diagonal_spatial)
  k = NET(X1, X2, **kw)
  s1, s2 = slice(1, 4), slice(0, 3, 2)
  out = k.slice(s1, s2)
  ref = NET(X1[s1], X2[s2], **kw)
  assert_same(out, ref)
  assert out.shape1 == ref.shape1 and out.shape2 == ref.shape2
  assert not out.x1_is_x2


def test_slice_of_a_kernel_of_x1_with_itself():
  k = NET(X1, diagonal_batch=False)
  same = k.slice(slice(1, 3), slice(1, 3))
  assert same.x1_is_x2 and same.cov2 is None
  assert_same(same, NET(X1[1:3], diagonal_batch=False))
  cross = k.slice(slice(0, 2), slice(1, 4))
  assert not cross.x1_is_x2
  assert_same(cross, NET(X1[:2], X1[1:4], diagonal_batch=False))


def test_slice_slices_masks_along_the_batch_axis():
  x = X1.copy()
  x[1, 2] = 7.
  k = INPUT(x, mask_constant=7.)
  out = k.slice(slice(1, 3), slice(0, 2))
  np.testing.assert_array_equal(out.mask1, k.mask1[1:3])
  np.testing.assert_array_equal(out.mask2, k.mask1[0:2])


def test_slice_takes_slices():
  with pytest.raises(ShapeError, match="slice objects"):
    INPUT(X1).slice(1, slice(None))


# --- reverse, transpose -------------------------------------------------------

def test_reverse_twice_is_identity_and_reverse_swaps_the_two_axes():
  k = NET(X1, X2, diagonal_batch=False)
  r = k.reverse()
  assert r.is_reversed and not r.reverse().is_reversed
  assert_same(r.reverse(), k)
  # With two spatial axes, reversing the stored order is the kernel of the
  # inputs with h and w swapped.
  swapped = NET(X1.transpose(0, 2, 1, 3), X2.transpose(0, 2, 1, 3),
                diagonal_batch=False)
  assert_same(r, swapped)


@pytest.mark.parametrize("diagonal_spatial", [True, False])
@pytest.mark.parametrize("axes", [(1, 2, 0), (2, 0, 1), (0, 2, 1)])
def test_transpose_is_the_kernel_of_permuted_inputs(axes, diagonal_spatial):
  x2 = rng.normal(size=(2,) + X3.shape[1:])
  k = NET(X3, x2, diagonal_spatial=diagonal_spatial)
  perm = (0,) + tuple(1 + a for a in axes) + (4,)
  ref = NET(X3.transpose(perm), x2.transpose(perm),
            diagonal_spatial=diagonal_spatial)
  out = k.transpose(axes)
  assert_same(out, ref)
  assert out.shape1 == ref.shape1 and out.shape2 == ref.shape2


def test_transpose_of_a_reversed_kernel_permutes_stored_groups():
  k = INPUT(X3).reverse()  # stored groups: axes 3, 2, 1 of the activations
  out = k.transpose((1, 2, 0))
  # Stored group j now holds old group (1, 2, 0)[j]: activation axis 3 takes
  # old axis 2, axis 2 takes old 1, axis 1 takes old 3.
  perm = (0, 3, 1, 2, 4)
  assert out.shape1 == tuple(X3.shape[p] for p in perm)
  assert_same(out.reverse(), INPUT(X3.transpose(perm)))


def test_transpose_none_keeps_the_order_and_bad_axes_raise():
  k = INPUT(X3)
  assert_same(k.transpose(), k)
  with pytest.raises(ShapeError, match="permutation"):
    k.transpose((0, 1))


# --- mask -----------------------------------------------------------------

@pytest.mark.parametrize("diagonal_spatial", [True, False])
@pytest.mark.parametrize("diagonal_batch", [True, False])
def test_mask_zeroes_exactly_the_masked_pairs(diagonal_spatial, diagonal_batch):
  kw = dict(diagonal_batch=diagonal_batch, diagonal_spatial=diagonal_spatial)
  m1 = rng.random(X1.shape[:-1] + (1,)) < 0.3
  m2 = rng.random(X2.shape[:-1] + (1,)) < 0.3
  out = INPUT(X1, X2, **kw).mask(m1, m2)
  # Masking positions is zeroing the inputs there (all channels).
  ref = INPUT(np.where(m1, 0., X1), np.where(m2, 0., X2), **kw)
  assert_same(out, ref)
  np.testing.assert_array_equal(out.mask1, m1)
  # ... and nothing else changes: the unmasked entries are the original ones.
  k = INPUT(X1, X2, **kw)
  keep = out.nngp != 0
  np.testing.assert_array_equal(np.asarray(out.nngp)[keep],
                                np.asarray(k.nngp)[keep])


def test_mask_with_x2_none_uses_mask1_on_both_sides():
  m1 = rng.random(X1.shape[:-1] + (1,)) < 0.3
  out = INPUT(X1, diagonal_batch=False).mask(m1, None)
  assert_same(out, INPUT(np.where(m1, 0., X1), diagonal_batch=False))


def test_mask_broadcasts_a_per_column_mask():
  m1 = np.zeros((4, 1, 5, 1), bool)
  m1[0, 0, 2] = m1[3, 0, 4] = True  # whole columns of some images
  out = INPUT(X1, X2).mask(m1, None)
  ref = INPUT(np.where(m1, 0., X1), X2)
  assert_same(out, ref)


# --- indexing ---------------------------------------------------------------

@pytest.mark.parametrize("idx", [
    (slice(1, 3), slice(None, None, -1), slice(0, 4, 2)),
    (Ellipsis, 2, slice(None)),
    (slice(None), 0),
    np.s_[::2, 1:, ::-1, :],
])
@pytest.mark.parametrize("diagonal_spatial", [True, False])
def test_getitem_is_the_kernel_of_the_indexed_inputs(idx, diagonal_spatial):
  kw = dict(diagonal_spatial=diagonal_spatial, diagonal_batch=False)
  k = NET(X1, X2, **kw)
  ref = NET(X1[idx], X2[idx], **kw)
  out = k[idx]
  assert_same(out, ref)
  assert out.shape1 == ref.shape1 and out.shape2 == ref.shape2
  assert out.channel_axis == ref.channel_axis == len(ref.shape1) - 1


def test_getitem_of_a_reversed_kernel():
  idx = (slice(None), 1, slice(0, 3), slice(None, None, -1))
  out = INPUT(X3, X3[:2]).reverse()[idx]
  assert out.is_reversed
  assert_same(out.reverse(), INPUT(X3[idx], X3[:2][idx]))


def test_getitem_moves_the_channel_axis_after_dropped_axes():
  x = np.moveaxis(X1, -1, 2)  # (n, h, c, w)
  k = direct_kernel(x, channel_axis=2)
  out = k[:, 1]
  assert out.channel_axis == 1 and out.shape1 == (4, 2, 5)
  np.testing.assert_allclose(out.nngp, direct(x[:, 1], x[:, 1],
                                              channel_axis=1), **EXACT)


def test_getitem_indexes_masks():
  x = X1.copy()
  x[1, 2, 3] = 7.
  k = INPUT(x, mask_constant=7.)
  np.testing.assert_array_equal(k[:, 2, 1:].mask1, k.mask1[:, 2, 1:])


@pytest.mark.parametrize("idx, error, match", [
    ((0,), KernelRequirementError, "batch axis"),
    ((slice(None), slice(None), slice(None), 0), KernelRequirementError,
     "channel axis"),
    ((None,), ShapeError, "int, a slice"),
    ((np.array([0, 1]),), ShapeError, "int, a slice"),
    ((0, 0, 0, 0, 0), ShapeError, "entries"),
])
def test_getitem_errors(idx, error, match):
  with pytest.raises(error, match=match):
    INPUT(X1)[idx]


# --- dot_general ------------------------------------------------------------

def direct_kernel(x1, x2=None, channel_axis=-1):
  """A full-layout Kernel of inputs with any channel axis, by definition."""
  x2 = x1 if x2 is None else x2
  c = channel_axis % x1.ndim
  return Kernel(
      nngp=jnp.asarray(direct(x1, x2, channel_axis=c)), ntk=None,
      cov1=jnp.asarray(direct(x1, x1, True, channel_axis=c)),
      cov2=jnp.asarray(direct(x2, x2, True, channel_axis=c)),
      diagonal_batch=True, shape1=x1.shape, shape2=x2.shape,
      batch_axis=0, channel_axis=c)


A_H = rng.normal(size=(3, 4))        # acts on h (size 3)
A_N1 = rng.normal(size=(4, 2))       # per example of x1 (n1 = 4)
A_N2 = rng.normal(size=(3, 2))       # per example of x2 (n2 = 3)
A_W = rng.normal(size=(5, 2))        # acts on w (size 5)

CASES = {
    # name: (other1, other2, is_lhs, dimension_numbers)
    "contract h": (A_H, A_H, False, (((1,), (0,)), ((), ()))),
    "lhs contracts h": (A_H.T, A_H.T, True, (((1,), (1,)), ((), ()))),
    "pair batch": (A_N1, A_N2, False, (((), ()), ((0,), (0,)))),
    "pair w": (A_W, A_W, False, (((), ()), ((2,), (0,)))),
    "outer": (A_W[:2, :3], A_W[:2, :3], True, (((), ()), ((), ()))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dot_general_is_the_kernel_of_the_contraction(case):
  a1, a2, is_lhs, dn = CASES[case]

  def finite(x, a):
    return np.asarray(lax.dot_general(*((a, x) if is_lhs else (x, a)), dn))

  y1, y2 = finite(X1, a1), finite(X2, a2)
  out = INPUT(X1, X2).dot_general(a1, a2, is_lhs, dn)
  assert out.shape1 == y1.shape and out.shape2 == y2.shape
  b, c = out.batch_axis, out.channel_axis
  assert y1.shape[b] == 4 and y1.shape[c] == X1.shape[-1]
  np.testing.assert_allclose(out.nngp, direct(y1, y2, batch_axis=b,
                                              channel_axis=c), **EXACT)
  np.testing.assert_allclose(out.cov1, direct(y1, y1, True, batch_axis=b,
                                              channel_axis=c), **EXACT)
  np.testing.assert_allclose(out.cov2, direct(y2, y2, True, batch_axis=b,
                                              channel_axis=c), **EXACT)
  assert not out.is_reversed


def test_dot_general_of_a_reversed_kernel_and_of_the_ntk():
  a, dn = A_H, (((1,), (0,)), ((), ()))
  k = NET(X1, X2)
  out = k.dot_general(a, a, False, dn)
  assert_same(k.reverse().dot_general(a, a, False, dn), out)
  # Output (n, w, c, h'): groups (w, h'); the NTK contracted on both sides.
  want = np.einsum("hk,abhHwW,HK->abwWkK", a, k.ntk, a)
  np.testing.assert_allclose(out.ntk, want, **EXACT)


def test_dot_general_diagonal_spatial_pairing_and_x2_none():
  dn = (((), ()), ((2,), (0,)))
  k = INPUT(X1, diagonal_spatial=True)
  out = k.dot_general(A_W, None, False, dn)  # x2 = x1: the same constant
  y = np.asarray(lax.dot_general(X1, A_W, dn))
  assert out.x1_is_x2 and out.cov2 is None
  np.testing.assert_allclose(
      out.nngp, direct(y, y, diagonal_spatial=True, batch_axis=1,
                       channel_axis=3), **EXACT)
  # Another constant for the second side: no longer x1 with itself.
  other = k.dot_general(A_W, 2 * A_W, False, dn)
  assert not other.x1_is_x2
  np.testing.assert_allclose(other.cov2, 4 * out.cov1, **EXACT)
  np.testing.assert_allclose(other.nngp, 2 * out.nngp, **EXACT)


def test_dot_general_propagates_masks():
  x = X1.copy()
  x[0, :, 1] = 7.  # column w=1 of example 0 fully masked
  x[1, 0, 2] = 7.  # one pixel of example 1
  k = INPUT(x, X2, mask_constant=7.)
  out = k.dot_general(A_H, A_H, False, (((1,), (0,)), ((), ())))
  assert out.mask1.shape == out.shape1
  expected = np.zeros(out.shape1, bool)
  expected[0, 1] = True  # every h of that column is masked; others are not
  np.testing.assert_array_equal(out.mask1, expected)


@pytest.mark.parametrize("kw, dn, match", [
    ({}, (((3,), (0,)), ((), ())), "channel axis"),
    ({}, (((0,), (0,)), ((), ())), "batch axis"),
    ({"diagonal_spatial": True}, (((1,), (0,)), ((), ())), "off-diagonal"),
])
def test_dot_general_errors(kw, dn, match):
  k = INPUT(X1, X2, **kw)
  with pytest.raises(KernelRequirementError, match=match):
    k.dot_general(np.ones((2, 4)), np.ones((2, 4)), False, dn)


def test_dot_general_with_one_side_none_raises_unless_x2_is_x1():
  with pytest.raises(KernelRequirementError, match="both"):
    INPUT(X1, X2).dot_general(A_H, None, False, (((1,), (0,)), ((), ())))
  k = INPUT(X1)
  assert k.dot_general(None, None, False, (((1,), (0,)), ((), ()))) is k


# --- arithmetic -------------------------------------------------------------

def test_multiplying_is_the_kernel_of_scaled_outputs():
  scale = 3.
  head = lambda w, b: stax.serial(fakes.linear(), fakes.square(),
                                  fakes.linear(w_var=w, b_var=b))[2]
  k = head(2., 0.5)(X1, X2)
  ref = head(2. * scale ** 2, 0.5 * scale ** 2)(X1, X2)  # last layer scaled
  assert_same(k * scale, ref)
  assert_same(scale * k, ref)
  assert_same(k / (1 / scale), ref)
  assert_same(k * jnp.asarray(scale), ref)


def test_adding_is_an_independent_bias_and_leaves_the_ntk():
  k = NET(X1, X2)
  out = k + 2.
  for f in ("nngp", "cov1", "cov2"):
    np.testing.assert_allclose(getattr(out, f), getattr(k, f) + 4., **EXACT)
  assert out.ntk is k.ntk
  assert_same(k - 2., out)  # NT: subtracting a bias is adding one
  assert -k is k and +k is k


@pytest.mark.parametrize("op", [lambda k: k + k, lambda k: k * k,
                                lambda k: k * "2", lambda k: k - [1.]])
def test_arithmetic_with_a_non_scalar_raises(op):
  with pytest.raises(KernelArithmeticError, match="scalar"):
    op(INPUT(X1))
  with pytest.raises(TypeError):
    op(INPUT(X1))
