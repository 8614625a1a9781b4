"""Tests of `BlockAvgPool`: exact rules, stored order, masks, Monte Carlo, registration."""

import jax
import numpy as np
import pytest

from ntcore import ShapeError, registry, stax, testing

from nt_blockpool import BlockAvgPool

RNG = np.random.RandomState(0)
X1 = RNG.randn(3, 4, 6, 2)
X2 = RNG.randn(2, 4, 6, 2)


def trunk():
  """A Conv stores full spatial pairs reversed (`is_reversed`); Dense does not."""
  return [stax.Conv(3, (3, 3), padding="SAME", W_std=1.2, b_std=0.1),
          stax.Relu()]


def test_agrees_with_avgpool_over_the_same_blocks():
  # nt-conv's AvgPool with strides = window and VALID padding pools the same
  # blocks by an independent rule (window sums over shifted slices).
  head = [stax.Flatten(), stax.Dense(1)]
  ours = stax.serial(*trunk(), BlockAvgPool((2, 3)), *head)[2]
  theirs = stax.serial(*trunk(), stax.AvgPool((2, 3), (2, 3), "VALID"),
                       *head)[2]
  for x2 in (None, X2):
    a = ours(X1, x2, ("nngp", "ntk"))
    b = theirs(X1, x2, ("nngp", "ntk"))
    np.testing.assert_allclose(a.nngp, b.nngp, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.ntk, b.ntk, rtol=1e-12, atol=1e-14)


def test_reads_the_stored_order():
  # After a Conv the groups are stored (w, w', h, h'); pooling must take each
  # group's window from the dim it holds. Same kernel, in natural order.
  net = stax.serial(*trunk(), BlockAvgPool((2, 3)))[2]
  k = net(X1, X2)
  assert k.is_reversed
  natural = k.natural()
  dense = stax.serial(stax.Dense(3, W_std=1.2, b_std=0.1), stax.Relu(),
                      BlockAvgPool((2, 3)))[2](X1, X2)
  assert not dense.is_reversed
  assert natural.nngp.shape == dense.nngp.shape == (3, 2, 2, 2, 2, 2)
  # Brute force: pool the natural-order input kernel block by block.
  k_in = stax.serial(*trunk())[2](X1, X2).natural().nngp
  want = np.zeros((3, 2, 2, 2, 2, 2))
  for o in np.ndindex(2, 2, 2, 2):  # (h, h', w, w')
    h, hh, w, ww = o
    want[:, :, h, hh, w, ww] = k_in[:, :, 2 * h:2 * h + 2, 2 * hh:2 * hh + 2,
                                    3 * w:3 * w + 3, 3 * ww:3 * ww + 3].mean(
                                        (2, 3, 4, 5))
  np.testing.assert_allclose(natural.nngp, want, rtol=1e-12, atol=1e-14)


def test_zero_off_diagonal_input_stays_diagonal():
  # After ConvLocal the off-diagonal pairs are exactly zero, so a diagonal
  # output may be asked for and needs only a diagonal input:
  # m'[o] = (1 / w^2) sum_d m[o w + d] per axis.
  local = [stax.ConvLocal(3, (3, 3), padding="SAME"), stax.Relu(),
           stax.ConvLocal(3, (1, 1))]
  net = stax.serial(*local, BlockAvgPool((2, 3)))[2]
  diag = net(X1, X2, diagonal_spatial=True)
  full = net(X1, X2)
  assert diag.diagonal_spatial and not full.diagonal_spatial
  np.testing.assert_allclose(
      diag.nngp, np.einsum("abhhww->abhw", full.natural().nngp), rtol=1e-12,
      atol=1e-14)


def test_masked_block_is_masked_only_if_all_of_it_is():
  x = X1.copy()
  x[0, :2, :3] = 9.  # example 0: block (0, 0) is all padding
  x[1, 0, 0] = 9.    # example 1: one position of block (0, 0)
  net = stax.serial(stax.Dense(3), BlockAvgPool((2, 3)))
  k = net[2](x, None, mask_constant=9.)
  mask = np.asarray(k.mask1)[..., 0]
  assert mask[0, 0, 0] and mask.sum() == 1
  y = net[1](net[0](jax.random.PRNGKey(0), x.shape)[1], x, mask_constant=9.)
  np.testing.assert_array_equal(np.asarray(y.mask)[..., 0], mask)
  assert np.all(np.asarray(k.nngp)[0, :, 0, :, 0, :] == 0)


@pytest.mark.parametrize("x2", [None, X2])
def test_conformance_suite(x2):
  net = stax.serial(stax.Dense(3, W_std=1.3, b_std=0.2), stax.Erf(),
                    BlockAvgPool((2, 2)), stax.Flatten(), stax.Dense(2))
  testing.check_kernel_fn(net, X1, x2)


@pytest.mark.slow
def test_agrees_with_monte_carlo():
  # One Dense before the pool: its outputs are exactly Gaussian at any width,
  # and pooling and the readout are linear, so the estimate is unbiased
  # (bias=0). 16 groups, z=6: a correct kernel fails an entry with
  # probability ~2.4e-5 (Student's t, 15 degrees of freedom).
  net = stax.serial(stax.Dense(256, W_std=1.5, b_std=0.1),
                    BlockAvgPool((2, 3)), stax.Flatten(), stax.Dense(4))
  testing.check_monte_carlo(net, X1[:2], X2[:1], key=jax.random.PRNGKey(3),
                            n_samples=128, groups=16, z=6., bias=0.)


def test_wrong_window_rank_names_the_fix():
  with pytest.raises(ShapeError, match="Pass 2 sizes"):
    BlockAvgPool((2,))[0](jax.random.PRNGKey(0), X1.shape)


def test_registered_by_its_hook(plugin_manager):
  spec = registry.Registry(plugin_manager).layers.get("BlockAvgPool")
  assert spec.factory is BlockAvgPool and spec.plugin == "nt-blockpool"
