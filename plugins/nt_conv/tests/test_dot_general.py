"""`DotGeneral`: closed forms (the covariance contracted with the constant on
both sides), moved batch/channel axes, the conformance suite, masks, errors."""

import functools

import jax
import numpy as np
import pytest

import ntcore.testing
from ntcore import KernelRequirementError, stax

from _exact import Natural, natural

rng = np.random.default_rng(1)
X1 = rng.normal(size=(4, 3, 4, 2))  # NHWC
X2 = rng.normal(size=(3, 3, 4, 2))
R_H = rng.normal(size=(3, 2))  # contracts H (3) into a new axis of size 2


def trunk():
  # Conv: full kernels arrive stored reversed (NT's layout); DotGeneral's
  # output is in activation order. Erf (smooth dual) so that networks
  # compiled differently agree to round-off; see test_index.py.
  return [stax.Conv(4, (2, 2), padding="SAME", W_std=1.3, b_std=0.2),
          stax.Erf()]


@functools.lru_cache
def base_kernel(x2_is_none=False, diag=False):
  """The trunk's kernel in activation order, computed once per case."""
  k = stax.serial(*trunk())[2](X1, None if x2_is_none else X2,
                               diagonal_spatial=diag)
  return Natural(k)


def test_scalar_rhs_scales_the_kernel_by_its_square():
  want = base_kernel()
  got = stax.serial(*trunk(), stax.DotGeneral(rhs=-2.))[2](X1, X2)
  assert not got.is_reversed  # the output is in activation order
  for field in ("nngp", "ntk", "cov1"):
    np.testing.assert_allclose(getattr(got, field), 4 * getattr(want, field),
                               rtol=1e-13, atol=1e-15)


def test_contracting_an_axis_with_a_matrix():
  # y[n, w, c, p] = sum_h x[n, h, w, c] R[h, p]: the channel axis moves to 2
  # and Cov(y1[w, p], y2[w', p']) =
  #   sum_{h, h'} R[h, p] K[h, h', w, w'] R[h', p'].
  layer = stax.DotGeneral(rhs=R_H, dimension_numbers=(((1,), (0,)), ((), ())))
  k = stax.serial(*trunk(), layer)[2](X1, X2)
  assert (k.shape1, k.batch_axis, k.channel_axis) == ((4, 4, 4, 2), 0, 2)
  want = base_kernel()
  for field in ("nngp", "ntk"):
    expect = np.einsum("hp,nmhHwW,HP->nmwWpP", R_H, getattr(want, field), R_H)
    np.testing.assert_allclose(getattr(k, field), expect, rtol=1e-13,
                               atol=1e-15)
  np.testing.assert_allclose(
      k.cov1, np.einsum("hp,nhHwW,HP->nwWpP", R_H, want.cov1, R_H),
      rtol=1e-13, atol=1e-15)


def test_constant_on_the_left_permutes_positions():
  # With the constant on the left its free axes come first:
  # y[q, n, w, c] = sum_h P[q, h] x[n, h, w, c], so the batch axis moves to
  # 1, and with P a permutation the kernel is K with H permuted.
  perm = np.eye(3)[[2, 0, 1]]
  layer = stax.DotGeneral(lhs=perm, dimension_numbers=(((1,), (1,)), ((), ())))
  init_fn, apply_fn, net = stax.serial(*trunk(), layer)
  k = net(X1, X2)
  assert (k.shape1, k.batch_axis, k.channel_axis) == ((3, 4, 4, 4), 1, 3)
  want = np.asarray(base_kernel().nngp)[:, :, [2, 0, 1]][:, :, :, [2, 0, 1]]
  np.testing.assert_allclose(k.nngp, want, rtol=1e-13, atol=1e-15)
  out_shape, params = init_fn(jax.random.PRNGKey(0), X1.shape)
  assert apply_fn(params, X1).shape == out_shape == (3, 4, 4, 4)


def test_batch_dimension_pairs_a_spatial_axis_with_the_constant():
  # A dot_general batch dimension multiplies position by position:
  # y[w, n, h, c] = x[n, h, w, c] v[w]; the batch axis moves to 1 and
  # Cov(y1[w, h], y2[w', h']) = v[w] v[w'] K[h, h', w, w'].
  v = np.array([1., -2., 0.5, 3.])
  layer = stax.DotGeneral(rhs=v, dimension_numbers=(((), ()), ((2,), (0,))))
  k = stax.serial(*trunk(), layer)[2](X1, X2)
  assert (k.batch_axis, k.channel_axis) == (1, 3)
  want = np.einsum("w,nmhHwW,W->nmwWhH", v, base_kernel().nngp, v)
  np.testing.assert_allclose(k.nngp, want, rtol=1e-13, atol=1e-15)


def test_batch_axis_paired_with_the_constant_weights_each_example():
  # y[n, h, w, c] = v[n] x[n, h, w, c]: Cov(y1[n], y2[m]) = v[n] v[m] K[n, m].
  v = np.array([1., -2., 0.5, 3.])
  layer = stax.DotGeneral(rhs=v, dimension_numbers=(((), ()), ((0,), (0,))))
  net = stax.serial(*trunk(), layer)[2]
  np.testing.assert_allclose(
      net(X1, None, "nngp"),
      np.einsum("n,nmhHwW,m->nmhHwW", v, base_kernel(x2_is_none=True).nngp, v),
      rtol=1e-13, atol=1e-15)
  with pytest.raises(KernelRequirementError, match="must both have 4"):
    net(X1, X2)


@pytest.mark.parametrize("diag", [False, True])
def test_no_contraction_keeps_diagonal_layouts(diag):
  # An outer product with a vector adds a spatial axis: y[..., c, p] =
  # x[..., c] u[p]; diagonal blocks need only diagonal blocks.
  u = np.array([0.5, -1.5])
  layer = stax.DotGeneral(rhs=u)
  net = stax.serial(*trunk(), layer)[2]
  got = net(X1, X2, "nngp", diagonal_spatial=diag)
  base = np.asarray(base_kernel(diag=diag).nngp)
  want = (base[..., None] * u ** 2 if diag else
          base[..., None, None] * np.outer(u, u))
  np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("x2", [None, X2])
def test_conformance_suite(x2):
  # A Dense trunk: check_kernel_fn also runs the network with jit disabled,
  # one XLA compilation per op, which a Conv rule makes slow; the closed-form
  # tests above cover the convolution (reversed) layout.
  layer = stax.DotGeneral(rhs=R_H, dimension_numbers=(((1,), (0,)), ((), ())))
  net = stax.serial(stax.Dense(3, W_std=1.3, b_std=0.2), stax.Erf(), layer,
                    stax.Dense(2, W_std=1.1, b_std=0.1, channel_axis=2))
  ntcore.testing.check_kernel_fn(net, X1, x2)


def test_masked_positions_stay_masked_only_if_nothing_reaches_them():
  x = X1.copy()
  x[0, 0] = 9.  # row h=0 of example 0 is padding
  x[1] = 9.     # example 1 is all padding
  # Output p=0 reads input row 0 only; p=1 reads rows 0 and 2.
  r = np.array([[1., 1.], [0., 0.], [0., -1.]])
  layer = stax.DotGeneral(rhs=r, dimension_numbers=(((1,), (0,)), ((), ())))
  net = stax.serial(stax.Dense(3), layer, stax.Dense(2, channel_axis=2))
  k = net[2](x, None, mask_constant=9.)
  mask = np.asarray(k.mask1)[:, :, 0, :]  # (n, w, p)
  np.testing.assert_array_equal(mask[0], [[True, False]] * 4)
  assert mask[1].all() and not mask[2:].any()
  # Masked outputs have exactly zero covariance with everything.
  nngp = np.asarray(k.nngp)  # (n1, n2, w, w', p, p')
  assert np.all(nngp[0, :, :, :, 0, :] == 0) and np.all(nngp[1] == 0)
  assert np.all(nngp[2, 3] != 0)


def test_lhs_and_rhs_together_are_rejected():
  with pytest.raises(ValueError, match="lhs or rhs, not both"):
    stax.DotGeneral(lhs=1., rhs=2.)


def test_identity_without_constant():
  want = base_kernel()
  got = stax.serial(*trunk(), stax.DotGeneral())[2](X1, X2)
  np.testing.assert_allclose(natural(got, "nngp"), want.nngp, rtol=1e-13,
                             atol=1e-15)


@pytest.mark.parametrize("dims, match", [
    ((((3,), (0,)), ((), ())), "channel axis"),
    ((((0,), (0,)), ((), ())), "contracts the batch axis"),
])
def test_unsupported_dimension_numbers_name_the_fix(dims, match):
  other = np.ones((2,) if dims[0][0] == (3,) else (4,))
  net = stax.serial(*trunk(), stax.DotGeneral(rhs=other,
                                              dimension_numbers=dims))
  with pytest.raises(KernelRequirementError, match=match):
    net[2](X1, X2 if dims[0][0] == (3,) else None)


def test_asking_diagonal_spatial_for_a_contraction_fails_clearly():
  layer = stax.DotGeneral(rhs=R_H, dimension_numbers=(((1,), (0,)), ((), ())))
  with pytest.raises(KernelRequirementError, match="off-diagonal spatial"):
    stax.serial(*trunk(), layer)[2](X1, X2, diagonal_spatial=True)


@pytest.mark.slow
@pytest.mark.parametrize("pooled", [False, True])
def test_agrees_with_monte_carlo(pooled):
  # DotGeneral is linear with a fixed constant, so the pre-activations
  # before the readout are exactly Gaussian given the first layer: the Monte
  # Carlo mean is unbiased; only sampling error is allowed (z = 6 standard
  # errors from 16 groups). The output's channel axis is 2 (DotGeneral
  # moved it): the readout and the empirical kernels use that axis.
  # `pooled`: a Conv first layer and GlobalAvgPool (full spatial kernel,
  # stored reversed).
  layer = stax.DotGeneral(rhs=R_H, dimension_numbers=(((1,), (0,)), ((), ())))
  if pooled:
    net = stax.serial(
        stax.Conv(256, (2, 2), padding="SAME", W_std=1.3, b_std=0.2),
        stax.Relu(), layer, stax.GlobalAvgPool(channel_axis=2),
        stax.Dense(1, W_std=1.1, b_std=0.1))
    kwargs = {}
  else:
    net = stax.serial(stax.Dense(256, W_std=1.3, b_std=0.2), stax.Relu(),
                      layer, stax.Dense(1, W_std=1.1, b_std=0.1,
                                        channel_axis=2))
    kwargs = dict(trace_axes=(2,))
  ntcore.testing.check_monte_carlo(net, X1[:2, :, :3], X2[:2, :, :3],
                                   key=jax.random.PRNGKey(7), n_samples=128,
                                   bias=0., **kwargs)
