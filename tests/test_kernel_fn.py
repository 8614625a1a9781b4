"""The user-facing kernel_fn: input kernel, `get`, block selection, checks, jit."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntcore
from ntcore import Diag, Kernel, KernelRequirementError, ShapeError, stax
from ntcore._network import inputs

_spec = importlib.util.spec_from_file_location(
    "fakes", pathlib.Path(__file__).with_name("fakes.py"))
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)

rng = np.random.default_rng(0)
X1 = rng.normal(size=(4, 6))
X2 = rng.normal(size=(3, 6))


def test_input_kernel_is_channel_mean_of_products():
  _, _, kernel_fn = ntcore.stax.serial()  # no layer: the input kernel itself
  k = kernel_fn(X1, X2)
  np.testing.assert_allclose(k.nngp, X1 @ X2.T / 6, rtol=1e-13)
  np.testing.assert_allclose(k.cov1, (X1 ** 2).mean(-1), rtol=1e-13)
  np.testing.assert_allclose(k.cov2, (X2 ** 2).mean(-1), rtol=1e-13)
  np.testing.assert_array_equal(k.ntk, np.zeros((4, 3)))
  assert k.is_input and not k.is_gaussian and not k.x1_is_x2


def test_linear_rule_closed_form_and_get_variants():
  _, _, kernel_fn = fakes.linear(w_var=2., b_var=0.5)
  nngp = 2. * X1 @ X2.T / 6 + 0.5
  np.testing.assert_allclose(kernel_fn(X1, X2, "nngp"), nngp, rtol=1e-14)
  both = kernel_fn(X1, X2, ("ntk", "nngp"))
  assert both._fields == ("ntk", "nngp")
  np.testing.assert_allclose(both.ntk, nngp, rtol=1e-14)
  k = kernel_fn(X1, None)
  assert isinstance(k, Kernel) and k.x1_is_x2 and k.cov2 is None
  assert k.shape1 == (4, 3)
  with pytest.raises(ValueError, match="not a kernel field"):
    kernel_fn(X1, X2, "nngpp")


def test_ntk_computed_only_when_asked():
  _, _, kernel_fn = fakes.linear()
  assert kernel_fn(X1, X2, "nngp") is not None
  k = kernel_fn.apply(inputs.inputs_to_kernel(
      jnp.asarray(X1), None, diagonal_batch=True, diagonal_spatial=False,
      compute_ntk=False, batch_axis=0, channel_axis=-1))
  assert k.ntk is None


def test_kernel_fn_accepts_a_kernel():
  _, _, first = fakes.linear(w_var=1., b_var=0.)
  _, _, second = fakes.linear(w_var=3., b_var=1.)
  k = first(X1, X2)
  np.testing.assert_allclose(second(k, get="nngp"), 3 * k.nngp + 1, rtol=1e-15)


@pytest.mark.parametrize("x1, message", [
    (np.ones(5), "at least 2 axes"),
])
def test_bad_input_rank(x1, message):
  with pytest.raises(ShapeError, match=message):
    fakes.linear().kernel_fn(x1)


def test_mismatched_features():
  with pytest.raises(ShapeError, match="only along the batch axis"):
    fakes.linear().kernel_fn(X1, np.ones((3, 5)))


def test_nonlinearity_on_raw_inputs_says_put_an_affine_layer():
  with pytest.raises(KernelRequirementError, match="affine layer"):
    fakes.square().kernel_fn(X1)
  with pytest.raises(KernelRequirementError, match=r"previous layer \(Square\)"):
    stax.serial(fakes.linear(), fakes.square(), fakes.square()).kernel_fn(X1)


def test_nonlinearity_dual_closed_form_with_and_without_x2():
  _, _, kernel_fn = stax.serial(fakes.linear(w_var=1., b_var=0.), fakes.square())
  q1, q2, c = (X1 ** 2).mean(-1), (X2 ** 2).mean(-1), X1 @ X2.T / 6
  expected = q1[:, None] * q2[None, :] + 2 * c ** 2
  k = kernel_fn(X1, X2, ("nngp", "ntk"))
  np.testing.assert_allclose(k.nngp, expected, rtol=1e-13)
  np.testing.assert_allclose(k.ntk, c * 4 * c, rtol=1e-13)
  k11 = kernel_fn(X1, None)
  np.testing.assert_allclose(k11.cov1, 3 * q1 ** 2, rtol=1e-13)
  np.testing.assert_allclose(np.diag(k11.nngp), k11.cov1, rtol=1e-13)


def test_results_of_two_calls_are_the_same_pytree_type():
  # `get` as a tuple returns a namedtuple; its class must not change per
  # call, or tree_map over two results fails on mismatched node types.
  _, _, kernel_fn = fakes.linear()
  a = kernel_fn(X1, X2, ("nngp", "ntk"))
  b = kernel_fn(X1, None, ("nngp", "ntk"))
  assert type(a) is type(b)
  assert a._fields == ("nngp", "ntk")
  diff = jax.tree_util.tree_map(lambda u, v: u.shape[0] - v.shape[0], a, b)
  assert diff == (0, 0)


def _spatial_inputs():
  return rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(3, 3, 4, 5))


def test_spatial_layouts_full_and_diagonal():
  x1, x2 = _spatial_inputs()
  _, _, kernel_fn = fakes.linear()
  full = kernel_fn(x1, x2, "nngp")
  diag = kernel_fn(x1, x2, "nngp", diagonal_spatial=True)
  assert full.shape == (2, 3, 3, 3, 4, 4)
  assert diag.shape == (2, 3, 3, 4)
  expected = np.einsum("nabc,mABc->nmaAbB", x1, x2) / 5 * 2 + 0.5
  np.testing.assert_allclose(full, expected, rtol=1e-13)
  np.testing.assert_allclose(
      diag, np.einsum("nmaabb->nmab", expected), rtol=1e-13)


@pytest.mark.parametrize("diag, full_input", [
    (Diag.PRESERVES, True),       # spatial output kept full by default
    (Diag.REMOVES, False),        # Flatten-like: only same-position pairs needed
    (Diag.REMOVES_FULL, True),    # GlobalAvgPool-like: all pairs needed
    (Diag.NEEDS_FULL, True),
])
def test_only_needed_spatial_blocks_are_computed(diag, full_input):
  seen = []
  net = stax.serial(fakes.linear(record=seen), fakes.linear(diag_spatial=diag))
  x1, x2 = _spatial_inputs()
  net.kernel_fn(x1, x2, "nngp")
  assert seen[0].diagonal_spatial is (not full_input)
  assert seen[0].nngp.ndim == (6 if full_input else 4)


def test_diagonal_spatial_request_conflicting_with_a_layer_raises():
  net = stax.serial(fakes.linear(), fakes.linear(diag_spatial=Diag.NEEDS_FULL))
  with pytest.raises(KernelRequirementError, match="diagonal_spatial=True"):
    net.kernel_fn(*_spatial_inputs(), diagonal_spatial=True)


def test_batch_blocks_follow_requirements():
  seen = []
  diag_net = stax.serial(fakes.linear(record=seen), fakes.linear())
  diag_net.kernel_fn(X1, X2)
  assert seen[-1].cov1.shape == (4,)
  full_net = stax.serial(fakes.linear(record=seen),
                         fakes.linear(diag_batch=Diag.NEEDS_FULL))
  k = full_net.kernel_fn(X1, X2)
  assert seen[-1].cov1.shape == (4, 4)
  np.testing.assert_allclose(np.diag(k.cov1), diag_net.kernel_fn(X1).cov1,
                             rtol=1e-14)


def test_whole_network_is_traced_once_per_signature():
  seen = []
  _, _, kernel_fn = fakes.linear(record=seen)
  kernel_fn(X1, X2, "nngp")
  kernel_fn(X1 + 1., X2 - 1., "nngp")
  assert len(seen) == 1, "a second call with the same shapes retraced"
  kernel_fn(X1, None, "nngp")
  assert len(seen) == 2


def test_shapes_are_propagated_through_init_fn():
  seen = []
  net = stax.serial(fakes.linear(out_dim=7), fakes.linear(out_dim=2, record=seen))
  k = net.kernel_fn(X1, X2)
  assert seen[0].shape1 == (4, 7) and seen[0].shape2 == (3, 7)
  assert k.shape1 == (4, 2)


def test_channel_axis_mismatch_is_explained():
  net = stax.serial(fakes.linear(channel_axis=-1), fakes.linear(channel_axis=1))
  with pytest.raises(KernelRequirementError, match="channel_axis"):
    net.kernel_fn(*_spatial_inputs())


def test_masked_inputs_have_zero_covariance():
  x = X1.copy()
  x[1] = 10.
  k = fakes.linear().kernel_fn(x, None, mask_constant=10.)
  assert np.all(np.asarray(k.nngp)[1] == 0) and np.all(np.asarray(k.nngp)[:, 1] == 0)
  assert float(k.cov1[1]) == 0.
  unmasked = fakes.linear().kernel_fn(X1[[0, 2, 3]], None)
  np.testing.assert_allclose(np.asarray(k.nngp)[np.ix_([0, 2, 3], [0, 2, 3])],
                             unmasked.nngp, rtol=1e-14)


def test_kernel_is_a_pytree_with_static_metadata():
  k = fakes.linear().kernel_fn(X1, X2)
  leaves, treedef = jax.tree_util.tree_flatten(k)
  assert all(isinstance(l, jax.Array) for l in leaves)
  assert len(leaves) == 4  # nngp, ntk, cov1, cov2; masks are None
  rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
  assert rebuilt.shape1 == k.shape1 and rebuilt.x1_is_x2 == k.x1_is_x2
  with pytest.raises(Exception):
    k.nngp = None
  assert k.replace(is_gaussian=False).is_gaussian is False
