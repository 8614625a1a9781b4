"""Networks with several inputs (starting with `parallel`) or several
outputs (ending in `parallel`), as in NT: one result per branch for every
`get` form, in `kernel_fn`, `init_fn`/`apply_fn` and `nt.batch`."""

import jax
import numpy as np
import pytest

import ntcore as nt
from ntcore import stax

RNG = np.random.RandomState(0)
XA1, XB1 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 5))
XA2, XB2 = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 5))


def two_inputs():
  return stax.serial(stax.parallel(stax.Dense(16, b_std=0.1),
                                   stax.Dense(16, W_std=2., b_std=None)),
                     stax.FanInSum(), stax.Relu(), stax.Dense(1))


def two_outputs():
  return stax.serial(stax.Dense(16, b_std=0.1), stax.FanOut(2),
                     stax.parallel(stax.Relu(), stax.serial(stax.Erf(),
                                                            stax.Dense(3))))


def test_two_inputs_sum_the_branch_kernels():
  """Independent branches add: the kernel before FanInSum's Relu is
  `k_a + k_b`, so the network equals one Relu on that sum."""
  _, _, kernel_fn = two_inputs()
  got = kernel_fn([XA1, XB1], [XA2, XB2], "nngp")
  ka = stax.Dense(16, b_std=0.1)[2](XA1, XA2)
  kb = stax.Dense(16, W_std=2., b_std=None)[2](XB1, XB2)
  summed = ka.replace(nngp=ka.nngp + kb.nngp, cov1=ka.cov1 + kb.cov1,
                      cov2=ka.cov2 + kb.cov2, ntk=ka.ntk + kb.ntk)
  want = stax.serial(stax.Relu(), stax.Dense(1))[2](summed, get="nngp")
  np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("get", [None, "ntk", ("nngp", "ntk")])
def test_two_outputs_one_result_per_branch(get):
  _, _, kernel_fn = two_outputs()
  out = kernel_fn(XA1, XA2, get)
  assert isinstance(out, list) and len(out) == 2
  relu = stax.serial(stax.Dense(16, b_std=0.1), stax.Relu())[2](XA1, XA2, get)
  for g, w in zip(jax.tree_util.tree_leaves(out[0]),
                  jax.tree_util.tree_leaves(relu)):
    np.testing.assert_allclose(g, w, rtol=1e-12)
  if isinstance(get, tuple):
    assert type(out[1]).__name__ == "AnalyticKernel"


@pytest.mark.parametrize("get", ["nngp", ("nngp", "ntk")])
def test_batch_of_list_inputs_and_outputs(get):
  for network, x1, x2 in ((two_inputs(), [XA1, XB1], [XA2, XB2]),
                          (two_outputs(), XA1, None)):
    kernel_fn = network[2]
    want = kernel_fn(x1, x2, get)
    got = nt.batch(kernel_fn, 2)(x1, x2, get)
    for g, w in zip(jax.tree_util.tree_leaves(got),
                    jax.tree_util.tree_leaves(want)):
      np.testing.assert_allclose(g, w, rtol=1e-12)


def test_finite_network_with_two_inputs():
  init_fn, apply_fn, _ = two_inputs()
  shape, params = init_fn(jax.random.PRNGKey(0), [XA1.shape, XB1.shape])
  assert tuple(shape) == (4, 1)
  assert apply_fn(params, [XA1, XB1]).shape == (4, 1)


def test_x1_and_x2_with_different_numbers_of_inputs_is_a_clear_error():
  with pytest.raises(nt.ShapeError, match="same number"):
    two_inputs()[2]([XA1, XB1], [XA2], "nngp")


def test_nested_parallel_inputs_and_kernels():
  """`(x_a, (x_b, x_c))` into `parallel(A, parallel(B, C))`: nested lists
  of inputs and of kernels, each branch its own single-input kernel."""
  rng = np.random.RandomState(1)
  xs1 = [rng.normal(size=(4, 1)) for _ in range(3)]
  xs2 = [rng.normal(size=(5, 1)) for _ in range(3)]
  dense = [stax.Dense(n, b_std=0.1) for n in (3, 4, 5)]
  net = stax.parallel(dense[0], stax.parallel(dense[1], dense[2]))
  for x2 in (None, xs2):
    got = net[2]((xs1[0], (xs1[1], xs1[2])),
                 None if x2 is None else (x2[0], (x2[1], x2[2])), "nngp")
    want = [d[2](a, None if x2 is None else b, "nngp")
            for d, a, b in zip(dense, xs1, x2 or xs1)]
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1][0], want[1], rtol=1e-12)
    np.testing.assert_allclose(got[1][1], want[2], rtol=1e-12)
    batched = nt.batch(net[2], 2)((xs1[0], (xs1[1], xs1[2])), None if x2 is None
                                  else (x2[0], (x2[1], x2[2])), "nngp")
    for g, w in zip(jax.tree_util.tree_leaves(batched),
                    jax.tree_util.tree_leaves(got)):
      np.testing.assert_allclose(g, w, rtol=1e-12)
    # A kernel of nested branches goes through the readout network too.
    readout = stax.parallel(stax.Dense(1), stax.parallel(stax.Dense(1),
                                                         stax.Dense(1)))
    k = net[2]((xs1[0], (xs1[1], xs1[2])), None)
    out = readout[2](k, get="nngp")
    assert np.asarray(out[1][1]).shape == (4, 4)
