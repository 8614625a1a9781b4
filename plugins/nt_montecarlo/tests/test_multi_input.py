"""Empirical and Monte Carlo kernels of multi-input and multi-output networks.

NT's rule: `x1 = [xa1, xb1]` (a list or tuple of arrays with one batch size)
is handed to `apply_fn` as it is; a list of outputs gives a list of kernels,
one per output, without cross terms. The kernels are checked against the
definition written out here (`f(x1) f(x2)^T`, `J(x1) J(x2)^T` from
`jax.jacobian`) to float64 round-off, and `ntcore.batch` of them against the
unbatched call.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import random

import ntcore as nt
from ntcore import stax
from nt_montecarlo import empirical_kernel_fn, monte_carlo_kernel_fn

TIGHT = dict(rtol=1e-12, atol=1e-13)  # O(1) kernels: float64 round-off.


# Plain networks (no stax, one PRNG call) so that each compiles quickly.
def init_fn(key, input_shapes):
  (_, da), (_, h, w) = input_shapes
  w_ = random.normal(key, (da * 3 + h * w * 3 + 3 * 2 + 3,))
  a, b = da * 3, da * 3 + h * w * 3
  params = dict(wa=w_[:a].reshape(da, 3), wb=w_[a:b].reshape(h * w, 3),
                v=w_[b:b + 6].reshape(3, 2), u=w_[b + 6:].reshape(3, 1))
  n = input_shapes[0][0]
  return [(n, 2), (n, 1)], params


def apply_in(params, x):
  """Two inputs, one output: tanh(xa Wa + flat(xb) Wb) v."""
  xa, xb = x
  hidden = xa @ params["wa"] + xb.reshape(xb.shape[0], -1) @ params["wb"]
  return jnp.tanh(hidden / 2) @ params["v"]


def apply_out(params, x):
  """Two inputs, two outputs: [tanh(xa Wa) v, sin(flat(xb) Wb) u]."""
  xa, xb = x
  return [jnp.tanh(xa @ params["wa"]) @ params["v"],
          jnp.sin(xb.reshape(xb.shape[0], -1) @ params["wb"]) @ params["u"]]


def _inputs(seed, n):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.normal(size=(n, 3))),
          jnp.asarray(rng.normal(size=(n, 2, 2)))]


X1, X2 = _inputs(0, 5), _inputs(1, 3)
PARAMS = init_fn(random.PRNGKey(0), [x.shape for x in X1])[1]


def nngp_by_hand(f, params, x1, x2):
  """Per output: f(x1) f(x2)^T / C."""
  o1, o2 = f(params, x1), f(params, x2)
  return jax.tree_util.tree_map(lambda a, b: a @ b.T / a.shape[-1], o1, o2)


def ntk_by_hand(f, params, x1, x2):
  """Per output: sum over parameters of J(x1) J(x2)^T, traced over C."""
  def one(index):
    def flat_jacobian(x):
      pick = (lambda o: o) if index is None else (lambda o: o[index])
      jac = jax.jacobian(lambda p: pick(f(p, x)))(params)
      leaves = [j.reshape(j.shape[:2] + (-1,))
                for j in jax.tree_util.tree_leaves(jac)]
      return jnp.concatenate(leaves, axis=-1)  # (n, C, P)
    j1, j2 = flat_jacobian(x1), flat_jacobian(x2)
    return jnp.einsum("ncp,mcp->nm", j1, j2) / j1.shape[1]
  out = f(params, x1)
  if isinstance(out, list):
    return [one(i) for i in range(len(out))]
  return one(None)


def assert_trees_close(ref, out, tol=None):
  assert (jax.tree_util.tree_structure(ref)
          == jax.tree_util.tree_structure(out))
  for a, b in zip(jax.tree_util.tree_leaves(ref),
                  jax.tree_util.tree_leaves(out)):
    assert np.shape(a) == np.shape(b)
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), **(tol or TIGHT))


@pytest.mark.parametrize("f", [apply_in, apply_out], ids=["in", "out"])
@pytest.mark.parametrize("implementation", [0, 1, 2, 3])
def test_empirical_kernels_of_list_inputs_follow_the_definition(
    f, implementation):
  kernel_fn = empirical_kernel_fn(f, implementation=implementation)
  for x2 in (X2, None):
    second = X1 if x2 is None else x2
    out = kernel_fn(X1, x2, ("nngp", "ntk"), PARAMS)
    nngp = nngp_by_hand(f, PARAMS, X1, second)
    ntk = ntk_by_hand(f, PARAMS, X1, second)
    if f is apply_out:
      assert isinstance(out, list) and len(out) == 2
      assert all(type(o).__name__ == "EmpiricalKernel" for o in out)
      assert_trees_close(nngp, [o.nngp for o in out])
      assert_trees_close(ntk, [o.ntk for o in out])
    else:
      assert type(out).__name__ == "EmpiricalKernel"
      assert_trees_close((nngp, ntk), (out.nngp, out.ntk))


def test_tuple_inputs_and_vmap_axes_give_the_same_kernels():
  ref = empirical_kernel_fn(apply_out)(X1, X2, "ntk", PARAMS)
  as_tuple = empirical_kernel_fn(apply_out)(tuple(X1), tuple(X2), "ntk",
                                            PARAMS)
  assert_trees_close(ref, as_tuple)
  # Examples do not interact: per-example Jacobians (in_axes per input).
  for vmap_axes in (0, ([0, 0], [0, 0], {})):
    for implementation in (1, 2):
      out = empirical_kernel_fn(apply_out, vmap_axes=vmap_axes,
                                implementation=implementation)(
                                    X1, X2, "ntk", PARAMS)
      assert_trees_close(ref, out)


@pytest.mark.parametrize("f", [apply_in, apply_out], ids=["in", "out"])
@pytest.mark.parametrize("device_count", [0, -1])
def test_batched_empirical_kernel_of_list_inputs(f, device_count):
  kernel_fn = empirical_kernel_fn(f, trace_axes=())
  batched = nt.batch(kernel_fn, 2, device_count)
  for x2 in (X2, None):
    ref = kernel_fn(X1, x2, ("nngp", "ntk"), PARAMS)
    out = batched(X1, x2, ("nngp", "ntk"), PARAMS)
    assert_trees_close(ref, out)
    assert batched.last_run["total"] == (9 if x2 is None else 6)


@pytest.mark.slow  # a stax network and a jit of its blocks: ~20 s to compile
def test_empirical_kernel_of_a_stax_parallel_network_in_blocks():
  init, apply, _ = stax.serial(
      stax.parallel(stax.Dense(4), stax.serial(stax.Flatten(), stax.Dense(4))),
      stax.FanInSum(), stax.Erf(), stax.Dense(2))
  _, params = init(random.PRNGKey(1), [x.shape for x in X1])
  kernel_fn = empirical_kernel_fn(apply)
  ref = kernel_fn(X1, X2, None, params)
  assert_trees_close(ntk_by_hand(apply, params, X1, X2), ref.ntk)
  out = nt.batch(kernel_fn, 2, 0)(X1, X2, None, params)
  assert_trees_close(ref, out)
  traced = jax.jit(lambda p: nt.batch(kernel_fn, 2, 0)(X1, X2, None, p))(
      params)
  assert_trees_close(ref, traced)


KEY = random.PRNGKey(3)


def _nt_samples(n):
  """Parameters of NT's samples 0..n-1 from KEY (monte_carlo.py)."""
  key, params = KEY, []
  for _ in range(n):
    with jax.threefry_partitionable(False):  # split as JAX 0.4, NT's
      key, sample_key = random.split(key)
      init_key, _ = random.split(sample_key)
    params.append(init_fn(init_key, [x.shape for x in X1])[1])
  return params


@pytest.mark.parametrize("f", [apply_in, apply_out], ids=["in", "out"])
def test_monte_carlo_of_list_inputs_averages_the_samples(f):
  samples = _nt_samples(3)
  empirical = empirical_kernel_fn(f)
  draws = [empirical(X1, X2, ("nngp", "ntk"), p) for p in samples]
  expected = jax.tree_util.tree_map(lambda *k: sum(k) / 3, *draws)
  out = monte_carlo_kernel_fn(init_fn, f, KEY, 3)(X1, X2, ("nngp", "ntk"))
  if f is apply_out:
    assert isinstance(out, list) and len(out) == 2
    assert all(type(o).__name__ == "MonteCarloKernel" for o in out)
  assert_trees_close(jax.tree_util.tree_leaves(expected),
                     jax.tree_util.tree_leaves(out))


@pytest.mark.slow  # four Monte Carlo compilations, ~20-30 s each
@pytest.mark.parametrize("device_count", [0, -1])
def test_monte_carlo_in_blocks_of_list_inputs(device_count):
  # Every block uses the same parameter draws: batching changes only the
  # order of sums.
  ref = monte_carlo_kernel_fn(init_fn, apply_out, KEY, 2)(X1, None)
  batched = monte_carlo_kernel_fn(init_fn, apply_out, KEY, 2, batch_size=2,
                                  device_count=device_count)
  assert_trees_close(ref, batched(X1, None))
  assert_trees_close(
      monte_carlo_kernel_fn(init_fn, apply_out, KEY, 2)(X1, X2, "ntk"),
      batched(X1, X2, "ntk"))


def test_vmap_axes_tuple_for_list_outputs_as_nt_programs_write_it():
  """`vmap_axes=(0, 0)` for a network whose inputs are a tuple and whose
  outputs are a list (`parallel`): the same kernels as without vmap_axes."""
  rng = np.random.RandomState(4)
  x1 = (rng.normal(size=(3, 2)), rng.normal(size=(3, 5)))
  x2 = (rng.normal(size=(4, 2)), rng.normal(size=(4, 5)))
  init_fn, apply_fn, _ = stax.serial(
      stax.parallel(stax.Dense(8), stax.Dense(9)),
      stax.parallel(stax.Dense(1), stax.Dense(2)))
  _, params = init_fn(jax.random.PRNGKey(0), (x1[0].shape, x1[1].shape))
  for implementation in nt.NtkImplementation:
    plain = nt.empirical_ntk_fn(apply_fn, implementation=implementation)
    mapped = nt.empirical_ntk_fn(apply_fn, implementation=implementation,
                                 vmap_axes=(0, 0))
    for a, b in zip(plain(x1, x2, params), mapped(x1, x2, params)):
      np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
