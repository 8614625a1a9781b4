"""Conv, ConvTranspose, ConvLocal, pooling, Flatten: exact identities.

Every check here holds to float64 round-off: linear layers against the exact
`J J^T` of their finite `apply_fn` (see `_exact`), layouts (NT's reversed
full-spatial pairs, full vs diagonal), dimension numbers, masking, errors.
"""

import jax
import numpy as np
import pytest

from ntcore import KernelRequirementError, stax

from _exact import jacobian_kernel, natural, spatial_diagonal

rng = np.random.default_rng(0)


def images(*shape):
  return rng.normal(size=shape)


def analytic(layer, x1, x2, field="nngp", **kwargs):
  k = layer[2](x1, x2, **kwargs)
  return natural(k, field), k


# ---------------------------------------------------------------- exactness

LINEAR = {
    "conv_same": ((4, 4, 2), lambda: stax.Conv(1, (3, 3), padding="SAME",
                                               W_std=1.3, b_std=0.4)),
    "conv_valid_rect": ((5, 4, 2), lambda: stax.Conv(1, (3, 2), padding="VALID",
                                                     W_std=0.9)),
    "conv_strides_same": ((5, 6, 2), lambda: stax.Conv(
        1, (3, 3), strides=(2, 3), padding="SAME", W_std=1.1, b_std=0.2)),
    "conv_strides_valid": ((7, 6, 1), lambda: stax.Conv(
        1, (3, 2), strides=(2, 2), padding="VALID")),
    "conv_circular": ((4, 5, 2), lambda: stax.Conv(
        1, (3, 3), padding="CIRCULAR", W_std=1.2, b_std=0.3)),
    "conv_circular_strided": ((5, 4, 2), lambda: stax.Conv(
        1, (3, 2), strides=(2, 2), padding="CIRCULAR")),
    "conv_1d": ((7, 3), lambda: stax.Conv(1, (3,), padding="SAME", b_std=0.1)),
    "conv_1d_strided": ((8, 2), lambda: stax.Conv(1, (4,), strides=(3,),
                                                  padding="SAME")),
    "conv_3d": ((3, 4, 3, 2), lambda: stax.Conv(1, (2, 3, 2), padding="SAME",
                                                W_std=1.4, b_std=0.2)),
    "conv_5x5": ((6, 6, 1), lambda: stax.Conv(1, (5, 5), padding="SAME")),
    "transpose_same_s2": ((3, 3, 2), lambda: stax.ConvTranspose(
        1, (3, 3), strides=(2, 2), padding="SAME", W_std=1.5, b_std=0.1)),
    "transpose_valid": ((3, 4, 2), lambda: stax.ConvTranspose(
        1, (3, 2), strides=(2, 1), padding="VALID")),
    "transpose_circular": ((3, 3, 1), lambda: stax.ConvTranspose(
        1, (3, 3), strides=(2, 2), padding="CIRCULAR", b_std=0.2)),
    "transpose_1d": ((4, 2), lambda: stax.ConvTranspose(1, (4,), strides=(3,),
                                                        padding="SAME")),
    "local_same": ((4, 4, 2), lambda: stax.ConvLocal(1, (3, 3), padding="SAME",
                                                     W_std=1.3, b_std=0.2)),
    "local_strided": ((5, 5, 2), lambda: stax.ConvLocal(
        1, (2, 3), strides=(2, 1), padding="VALID")),
    "conv_avgpool": ((4, 6, 2), lambda: stax.serial(
        stax.Conv(1, (3, 3), padding="SAME", b_std=0.1),
        stax.AvgPool((2, 3), strides=(2, 2)))),
    "conv_avgpool_same_edges": ((5, 5, 1), lambda: stax.serial(
        stax.Conv(1, (2, 2), padding="SAME"),
        stax.AvgPool((3, 3), padding="SAME", normalize_edges=True))),
    "conv_avgpool_circular": ((4, 4, 1), lambda: stax.serial(
        stax.Conv(1, (2, 2), padding="SAME"),
        stax.AvgPool((3, 2), strides=(1, 2), padding="CIRCULAR"))),
    "conv_sumpool_same": ((5, 4, 2), lambda: stax.serial(
        stax.Conv(1, (2, 2), padding="VALID"),
        stax.SumPool((3, 3), strides=(2, 1), padding="SAME"))),
    "conv_conv": ((5, 5, 2), lambda: stax.serial(
        stax.Conv(1, (3, 3), padding="SAME"), stax.AvgPool((2, 2)),
        stax.Conv(1, (2, 2), padding="VALID", W_std=0.8, b_std=0.1))),
}


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_linear_layers_equal_their_exact_finite_covariance(name):
  shape, make = LINEAR[name]
  x1, x2 = images(3, *shape), images(2, *shape)
  layer = make()
  if name == "conv_conv":
    # Two weight layers: E[f f'] is exact in expectation but not J J^T for
    # one draw; check the composition through the kernel of its parts.
    first = stax.serial(stax.Conv(1, (3, 3), padding="SAME"),
                        stax.AvgPool((2, 2)))
    k1 = first[2](x1, x2)
    second = stax.Conv(1, (2, 2), padding="VALID", W_std=0.8, b_std=0.1)
    np.testing.assert_allclose(natural(layer[2](x1, x2), "nngp"),
                               natural(second[2](k1), "nngp"), rtol=1e-12)
    return
  exact = jacobian_kernel(layer, x1, x2)
  nngp, k = analytic(layer, x1, x2, diagonal_spatial=False)
  np.testing.assert_allclose(nngp, exact, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(natural(k, "ntk"), exact, rtol=1e-12, atol=1e-12)
  # cov1 is the kernel of x1 with itself.
  own = jacobian_kernel(layer, x1, x1)
  cov1 = natural(k, "cov1")
  np.testing.assert_allclose(
      cov1, np.moveaxis(np.diagonal(own, 0, 0, 1), -1, 0), rtol=1e-12,
      atol=1e-12)


def test_global_pools_equal_exact_covariance():
  x1, x2 = images(3, 4, 5, 2), images(2, 4, 5, 2)
  for pool, scale in ((stax.GlobalAvgPool(), 1.), (stax.GlobalSumPool(), 1.)):
    net = stax.serial(stax.Conv(1, (3, 3), padding="SAME", b_std=0.3), pool)
    exact = jacobian_kernel(net, x1, x2)
    np.testing.assert_allclose(net[2](x1, x2, "nngp"), scale * exact,
                               rtol=1e-12)


def test_flatten_is_the_mean_same_position_covariance():
  x1, x2 = images(3, 4, 5, 2), images(2, 4, 5, 2)
  conv = stax.Conv(3, (3, 3), padding="SAME", b_std=0.3)
  full = natural(conv[2](x1, x2, diagonal_spatial=False), "nngp")
  net = stax.serial(conv, stax.Flatten())
  np.testing.assert_allclose(net[2](x1, x2, "nngp"),
                             spatial_diagonal(full).mean((2, 3)), rtol=1e-12)
  # Flatten of the raw inputs: x1 . x2 / (number of features).
  got = stax.Flatten()[2](x1, x2, ("nngp", "ntk"))
  np.testing.assert_allclose(got.nngp, x1.reshape(3, -1) @ x2.reshape(2, -1).T
                             / 40, rtol=1e-12)
  assert got.ntk.shape == ()  # no parameters: NT's 0-d zero NTK


def test_standard_parameterization_matches_ntk_parameterization_scaled():
  # Standard: nngp as NTK-parameterized with the same W_std, b_std; NTK
  # `(C |f| / s0) A(nngp) + [b]` from the inputs (A(nngp) the unscaled mean).
  x1, x2 = images(3, 4, 4, 2), images(2, 4, 4, 2)
  kw = dict(padding="SAME", W_std=1.3, b_std=0.2)
  ntk_p = stax.Conv(5, (3, 3), **kw)[2](x1, x2)
  std = stax.Conv(5, (3, 3), parameterization="standard", s=(2, 3), **kw)[2](
      x1, x2)
  np.testing.assert_allclose(std.nngp, ntk_p.nngp, rtol=1e-12)
  unscaled = stax.Conv(5, (3, 3), padding="SAME")[2](x1, x2, "nngp")
  np.testing.assert_allclose(std.ntk, 2 * 9 / 2 * unscaled + 1., rtol=1e-12)


# ------------------------------------------------------------------ layouts

def test_full_spatial_conv_output_is_stored_reversed_as_in_nt():
  x1, x2 = images(3, 5, 4, 2), images(2, 5, 4, 2)
  one = stax.Conv(2, (3, 3), padding="SAME")[2](x1, x2)
  assert one.is_reversed and one.nngp.shape == (3, 2, 4, 4, 5, 5)
  two = stax.serial(stax.Conv(2, (3, 3), padding="SAME"), stax.Relu(),
                    stax.Conv(2, (3, 3), padding="SAME"))[2](x1, x2)
  assert not two.is_reversed and two.nngp.shape == (3, 2, 5, 5, 4, 4)
  # Diagonal-spatial kernels are never reversed (NT).
  diag = stax.Conv(2, (3, 3), padding="SAME")[2](x1, x2, diagonal_spatial=True)
  assert not diag.is_reversed and diag.nngp.shape == (3, 2, 5, 4)


# Erf, not Relu: Relu's dual has a square-root singularity at correlation 1,
# where the full layout's same-position entries go through the general
# formula and keep only ~sqrt(eps) of their digits (the diagonal layout uses
# the exact diagonal formula); Erf's dual is smooth there.
@pytest.mark.parametrize("make", [
    lambda: [stax.Conv(3, (3, 3), padding="SAME", b_std=0.1), stax.Erf(),
             stax.Conv(3, (2, 3), strides=(2, 1), padding="VALID")],
    lambda: [stax.Conv(3, (3, 3), padding="CIRCULAR"), stax.Erf(),
             stax.ConvTranspose(3, (3, 2), strides=(2, 2), padding="SAME")],
    lambda: [stax.ConvLocal(3, (3, 3), padding="SAME", b_std=0.2), stax.Erf(),
             stax.ConvLocal(3, (2, 2), padding="VALID")],
    lambda: [stax.Conv(3, (3, 3), padding="SAME"), stax.Erf(),
             stax.Conv(3, (3, 3), padding="SAME"), stax.Erf(),
             stax.Conv(3, (3, 3), padding="SAME")],
], ids=["conv", "transpose", "local", "three_convs"])
def test_diagonal_of_full_kernel_is_the_diagonal_spatial_kernel(make):
  x1, x2 = images(3, 6, 5, 2), images(2, 6, 5, 2)
  _, _, kernel_fn = stax.serial(*make())
  full = kernel_fn(x1, x2, diagonal_spatial=False)
  diag = kernel_fn(x1, x2, diagonal_spatial=True)
  assert diag.diagonal_spatial and not full.diagonal_spatial
  for field in ("nngp", "ntk"):
    np.testing.assert_allclose(spatial_diagonal(natural(full, field)),
                               natural(diag, field), rtol=1e-11, atol=1e-13)
  np.testing.assert_allclose(spatial_diagonal(natural(full, "cov1"), 1),
                             natural(diag, "cov1"), rtol=1e-11)


def test_conv_local_is_diagonal_by_default_and_zero_off_the_diagonal():
  x = images(3, 4, 4, 2)
  _, _, kernel_fn = stax.serial(stax.ConvLocal(2, (3, 3), padding="SAME"),
                                stax.Relu(), stax.ConvLocal(2, (3, 3)))
  assert kernel_fn(x, None, "nngp").shape == (3, 3, 2, 2)  # NT's default
  full = kernel_fn(x, None, "nngp", diagonal_spatial=False)
  assert full.shape == (3, 3, 2, 2, 2, 2)
  same = np.einsum("ab,cd->abcd", np.eye(2), np.eye(2))
  assert np.all(np.asarray(full) * (1 - same) == 0)
  # Followed by pooling, its zero off-diagonal entries are all pooling needs.
  pooled = stax.serial(stax.ConvLocal(2, (3, 3), padding="SAME"),
                       stax.GlobalAvgPool())[2]
  diagonal = spatial_diagonal(natural(stax.ConvLocal(2, (3, 3), padding="SAME")[2](
      x, None, diagonal_spatial=False), "nngp"))
  np.testing.assert_allclose(pooled(x, None, "nngp"),
                             diagonal.sum((2, 3)) / 16 ** 2, rtol=1e-12)


def test_fan_in_sum_of_differently_ordered_branches():
  # WideResNet blocks add a two-conv branch (natural order) to a one-conv
  # shortcut (reversed); the sum must add like positions.
  x1, x2 = images(2, 5, 4, 2), images(3, 5, 4, 2)
  main = stax.serial(stax.Conv(2, (3, 3), padding="SAME"), stax.Relu(),
                     stax.Conv(2, (3, 3), padding="SAME", W_std=0.7))
  short = stax.Conv(2, (1, 1), W_std=1.3, b_std=0.1)
  block = stax.serial(stax.FanOut(2), stax.parallel(main, short),
                      stax.FanInSum())
  k = block[2](x1, x2)
  want = (natural(main[2](x1, x2), "nngp")
          + natural(short[2](x1, x2), "nngp"))
  np.testing.assert_allclose(natural(k, "nngp"), want, rtol=1e-12)


def test_channels_first_dimension_numbers_agree_with_channels_last():
  x1, x2 = images(3, 5, 4, 2), images(2, 5, 4, 2)
  nhwc = stax.serial(
      stax.Conv(3, (3, 2), strides=(2, 1), padding="SAME", b_std=0.1),
      stax.Relu(), stax.AvgPool((2, 2)), stax.GlobalAvgPool())
  nchw = stax.serial(
      stax.Conv(3, (3, 2), strides=(2, 1), padding="SAME", b_std=0.1,
                dimension_numbers=("NCHW", "OIHW", "NCHW")),
      stax.Relu(), stax.AvgPool((2, 2), channel_axis=1),
      stax.GlobalAvgPool(channel_axis=1))
  t = lambda x: np.transpose(x, (0, 3, 1, 2))
  for a, b in zip(nhwc[2](x1, x2, ("nngp", "ntk")),
                  nchw[2](t(x1), t(x2), ("nngp", "ntk"))):
    np.testing.assert_allclose(a, b, rtol=1e-12)
  # The finite networks agree too, with the filter and bias transposed.
  _, params = nhwc[0](jax.random.PRNGKey(1), x1.shape)
  (W, b), rest = params[0], params[1:]
  nchw_params = [(W.transpose(3, 2, 0, 1), b.transpose(0, 3, 1, 2))] + rest
  np.testing.assert_allclose(nhwc[1](params, x1), nchw[1](nchw_params, t(x1)),
                             rtol=1e-10)


def test_spatially_permuting_dimension_numbers():
  # Output spatial order W, H: the kernel's pairs follow the output order.
  x1 = images(3, 5, 4, 2)
  conv = stax.Conv(1, (3, 2), padding="VALID", dimension_numbers=(
      "NHWC", "HWIO", "NWHC"))
  exact = jacobian_kernel(conv, x1, x1)
  got = natural(conv[2](x1, None, diagonal_spatial=False), "nngp")
  assert got.shape == exact.shape == (3, 3, 3, 3, 3, 3)
  np.testing.assert_allclose(got, exact, rtol=1e-12)


# ------------------------------------------------------------------ masking

MASKED = {
    "conv_gap": ((4, 3, 2), [(0, 2), (0, 3)], lambda: [
        stax.Conv(3, (3, 3), padding="SAME", W_std=1.2, b_std=0.1),
        stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1)]),
    "two_convs_gap": ((4, 3, 2), [(0, 2), (0, 3)], lambda: [
        stax.Conv(3, (3, 3), padding="SAME"), stax.Relu(),
        stax.Conv(3, (3, 3), padding="SAME", b_std=0.2), stax.Erf(),
        stax.GlobalAvgPool(), stax.Dense(1, b_std=0.1)]),
    "conv1d_gsp": ((5, 2), [(0, 3)], lambda: [
        stax.Conv(3, (3,), padding="SAME"), stax.Relu(),
        stax.GlobalSumPool()]),
}


@pytest.mark.parametrize("name", sorted(MASKED))
def test_masked_padding_gives_the_kernel_of_the_unpadded_inputs(name):
  # SAME zero padding of the unpadded image reads exactly the (zeroed)
  # masked positions, and the global pool leaves them out.
  shape, widths, make = MASKED[name]
  _, _, kernel_fn = stax.serial(*make())
  x = images(2, *shape)
  padded = np.pad(x, [(0, 0)] + widths + [(0, 0)], constant_values=7.)
  want = kernel_fn(x, None, ("nngp", "ntk"))
  got = kernel_fn(padded, None, ("nngp", "ntk"), mask_constant=7.)
  # Same-position entries of an example with itself go through the Relu
  # dual at correlation 1, where the round-off of the two summation orders
  # (padded or not) can be amplified to ~sqrt(eps).
  for a, b in zip(want, got):
    np.testing.assert_allclose(b, a, rtol=1e-8)


def test_masks_propagate_through_window_layers():
  x = images(2, 6, 5, 2)
  x[0, 4:] = 5.
  _, _, kernel_fn = stax.serial(stax.Conv(2, (3, 3), strides=(2, 2),
                                          padding="SAME"),
                                stax.Relu(), stax.AvgPool((2, 2), (1, 1)),
                                stax.Flatten())
  k = kernel_fn(x, None, mask_constant=5.)
  # Conv (stride 2, SAME pads (0, 1): window centres on rows 1, 3, 5) masks
  # its output row 2; the 2x2 pool reads centre rows 0 and 1, unmasked.
  assert k.mask1.shape == (2, 2 * 2 * 2)
  conv_mask = stax.Conv(2, (3, 3), strides=(2, 2), padding="SAME")[2](
      x, None, mask_constant=5.).mask1
  assert conv_mask.shape == (2, 3, 3, 1)
  assert bool(conv_mask[0, 2].all()) and not bool(conv_mask[0, :2].any())
  assert not bool(conv_mask[1].any())


def test_pooling_a_channel_dependent_mask_is_not_supported():
  x = images(2, 4, 4, 2)
  x[0, 0, 0, 0] = 3.
  with pytest.raises(NotImplementedError, match="shared by all"):
    stax.AvgPool((2, 2))[2](x, None, mask_constant=3.)


# ------------------------------------------------------------------- errors

@pytest.mark.parametrize("make, match", [
    (lambda: stax.Conv(1, (3, 3), padding="FULL"), "SAME"),
    (lambda: stax.AvgPool((2, 2), padding="same-ish"), "CIRCULAR"),
    (lambda: stax.Conv(1, (3, 3), strides=(1,)), "different lengths"),
    (lambda: stax.ConvLocal(1, (3,), strides=(1, 1)), "different lengths"),
    (lambda: stax.Conv(1, (3, 3), parameterization="mup"), "'standard'"),
    (lambda: stax.Conv(1, (3, 3), dimension_numbers=("NHWC", "HWIO")),
     "three strings"),
    (lambda: stax.ConvTranspose(1, (3, 3), dimension_numbers=(
        "NHWC", "HWOO", "NHWC")), "three strings"),
    (lambda: stax.Flatten(batch_axis_out=2), "must be 0 or 1"),
])
def test_bad_arguments_raise_with_the_fix(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_diagonal_request_conflicting_with_pooling_raises():
  net = stax.serial(stax.Conv(1, (2, 2)), stax.AvgPool((2, 2)))
  with pytest.raises(KernelRequirementError, match="diagonal_spatial=True"):
    net[2](images(2, 4, 4, 1), None, diagonal_spatial=True)


def test_nonlinearity_after_flatten_needs_an_affine_layer():
  net = stax.serial(stax.Conv(1, (2, 2)), stax.Flatten(), stax.Relu())
  with pytest.raises(KernelRequirementError, match="affine"):
    net[2](images(2, 4, 4, 1), None)
