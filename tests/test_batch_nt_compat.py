"""`nt.batch` where NT programs rely on its behaviour: transformations
through it, inputs that differ beyond the batch axis, multi-input networks.

conftest.py gives float64 and 2 CPU devices (`device_count=-1` shards blocks
over both). Blocks of analytic kernels agree with the whole kernel to
float64 round-off (different matrix sizes sum in a different order), so
`TIGHT` is a few hundred ulps of O(1) kernels. The traced path runs the
same blocks inside the caller's program, which XLA fuses differently from
the program a concrete small call shares with its structure
(`ntcore/_network/dispatch.py`), so the two agree to `TIGHT` as well.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntcore as nt
from ntcore import stax
from ntcore.errors import BatchError, ShapeError

TIGHT = dict(rtol=1e-12, atol=1e-14)
# shard_map compiles the blocks of a round as one program; ReLU's arc-cosine
# near correlation 1 turns its ulp differences into ~1e-9 (test_parallel.py).
SHARDED = dict(rtol=1e-8, atol=1e-8)


def assert_trees_close(ref, out, tol):
  assert (jax.tree_util.tree_structure(ref)
          == jax.tree_util.tree_structure(out))
  for a, b in zip(jax.tree_util.tree_leaves(ref),
                  jax.tree_util.tree_leaves(out)):
    assert np.shape(a) == np.shape(b)
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), **tol)


def assert_trees_equal(ref, out):
  assert (jax.tree_util.tree_structure(ref)
          == jax.tree_util.tree_structure(out))
  for a, b in zip(jax.tree_util.tree_leaves(ref),
                  jax.tree_util.tree_leaves(out)):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  return rng.normal(size=(5, 4)), rng.normal(size=(4, 4))


@pytest.fixture(scope="module")
def erf_net():
  # Erf is smooth everywhere, so gradients through the kernel are finite
  # also on the diagonal (ReLU's arc-cosine has an infinite slope there).
  return stax.serial(stax.Dense(6, W_std=1.5, b_std=0.1), stax.Erf(),
                     stax.Dense(1, W_std=1.2, b_std=0.05))


# --- 1. traceable ---------------------------------------------------------
@pytest.mark.parametrize("batch_size", [0, 8])
def test_single_block_on_one_device_is_kernel_fn_itself(data, erf_net,
                                                        batch_size):
  # batch_size=0 (NT's "no batching") or one block covering everything.
  x1, x2 = data
  kernel_fn = erf_net[2]
  batched = nt.batch(kernel_fn, batch_size, device_count=0)
  ref = kernel_fn(x1, x2, ("nngp", "ntk"))
  assert_trees_equal(ref, batched(x1, x2, ("nngp", "ntk")))
  assert batched.last_run == dict(total=1, computed=1, loaded=0)

  jitted = jax.jit(lambda a, b: batched(a, b, ("nngp", "ntk")))(x1, x2)
  assert_trees_close(ref, jitted, TIGHT)
  grad = jax.grad(lambda a: jnp.sum(batched(a, x2, "ntk")))(x1)
  grad_ref = jax.grad(lambda a: jnp.sum(kernel_fn(a, x2, "ntk")))(x1)
  np.testing.assert_allclose(grad, grad_ref, **TIGHT)
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)
  stack = np.stack([x1, x1[::-1], 2 * x1])
  many = jax.vmap(lambda a: batched(a, None, "nngp"))(stack)
  for a, k in zip(stack, many):
    np.testing.assert_allclose(k, kernel_fn(a, None, "nngp"), **TIGHT)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("device_count", [0, -1])
def test_jit_over_blocks_gives_the_host_path_numbers(data, erf_net,
                                                     symmetric, device_count):
  x1, x2 = data
  x2 = None if symmetric else x2
  kernel_fn = erf_net[2]
  get = ("nngp", "ntk", "cov1", "cov2")
  batched = nt.batch(kernel_fn, 3, device_count)  # ragged: 5 = 3 + 2
  host = nt.batch(kernel_fn, 3, 0)(x1, x2, get)  # serial, concrete
  traced = jax.jit(lambda a, b: batched(a, b, get))(x1, x2)
  assert_trees_close(host, traced, TIGHT)
  # Under a trace the blocks run one after another, not across devices.
  assert batched.last_run["total"] == (3 if symmetric else 4)
  ref = kernel_fn(x1, x2, get)
  assert_trees_close(ref, traced, TIGHT)
  # The concrete call afterwards still shards and reports its blocks.
  concrete = batched(x1, x2, get)
  assert_trees_close(ref, concrete, TIGHT if device_count == 0 else SHARDED)


def test_jit_of_a_kernel_with_spatial_pairs_mirrors_them():
  # The traced assembler mirrors (n, n, h, h', w, w') blocks like the host.
  x = np.random.default_rng(2).normal(size=(5, 3, 2, 2))
  kernel_fn = stax.serial(stax.Conv(2, (2, 2), padding="SAME"), stax.Erf(),
                          stax.Conv(2, (2, 2)))[2]
  batched = nt.batch(kernel_fn, 2, 0)
  traced = jax.jit(lambda a: batched(a, None))(x)
  assert traced.nngp.shape == (5, 5, 2, 2, 1, 1)
  assert_trees_close(batched(x, None), traced, TIGHT)
  assert_trees_close(kernel_fn(x, None), traced, TIGHT)


def test_grad_and_vmap_through_blocks(data, erf_net):
  x1, x2 = data
  kernel_fn = erf_net[2]
  batched = nt.batch(kernel_fn, 3, 0)
  for second in (x2, None):
    # Under jit: eagerly, every slice and update of every block compiles
    # on its own.
    grad = jax.jit(jax.grad(
        lambda a, s=second: jnp.sum(batched(a, s, "ntk"))))(x1)
    grad_ref = jax.grad(
        lambda a, s=second: jnp.sum(kernel_fn(a, s, "ntk")))(x1)
    assert np.any(grad_ref != 0)
    np.testing.assert_allclose(grad, grad_ref, **TIGHT)
  stack = np.stack([x1, -x1])
  many = jax.vmap(lambda a: batched(a, x2, "nngp"))(stack)
  for a, k in zip(stack, many):
    np.testing.assert_allclose(k, kernel_fn(a, x2, "nngp"), **TIGHT)


def test_traced_arguments_also_take_the_traced_path(data):
  # Inputs concrete, parameters traced: jit over the parameters of an
  # empirical kernel computed in blocks.
  x1, _ = data
  init_fn, apply_fn, _ = stax.serial(stax.Dense(4), stax.Erf(), stax.Dense(2))
  _, params = init_fn(jax.random.PRNGKey(0), x1.shape)
  kernel_fn = nt.empirical_kernel_fn(apply_fn)
  batched = nt.batch(kernel_fn, 2, 0)
  traced = jax.jit(lambda p: batched(x1, None, "ntk", p))(params)
  np.testing.assert_array_equal(traced, batched(x1, None, "ntk", params))
  np.testing.assert_allclose(traced, kernel_fn(x1, None, "ntk", params),
                             **TIGHT)


def test_store_under_a_transformation_is_refused(data, erf_net, tmp_path):
  batched = nt.batch(erf_net[2], 2, 0, store=tmp_path / "blocks")
  with pytest.raises(BatchError, match="store=.*outside the transformation"):
    jax.jit(lambda a: batched(a, None, "nngp"))(data[0])
  assert not (tmp_path / "blocks" / "manifest.json").exists()
  out = batched(data[0], None, "nngp")  # concrete: stored as before
  assert batched.last_run["computed"] == 6
  np.testing.assert_allclose(out, erf_net[2](data[0], None, "nngp"), **TIGHT)


# --- 2. shapes beyond the batch axis -------------------------------------
def test_inputs_may_differ_beyond_the_batch_axis():
  # A kernel of flattened examples: batch splits both inputs along axis 0
  # and leaves the rest to kernel_fn.
  rng = np.random.default_rng(4)
  x1, x2 = rng.normal(size=(5, 12)), rng.normal(size=(4, 2, 3, 2))

  def kernel_fn(a, b=None, get=None):
    a = jnp.reshape(a, (a.shape[0], -1))
    b = a if b is None else jnp.reshape(b, (b.shape[0], -1))
    return jnp.tanh(a @ b.T / 12)

  ref = kernel_fn(x1, x2)
  for device_count in (0, -1):
    out = nt.batch(kernel_fn, 2, device_count)(x1, x2)
    np.testing.assert_allclose(out, ref, **TIGHT)


def test_flatten_network_takes_flat_against_image_inputs():
  rng = np.random.default_rng(5)
  x1, x2 = rng.normal(size=(5, 12)), rng.normal(size=(4, 2, 3, 2))
  _, _, kernel_fn = stax.serial(stax.Flatten(), stax.Dense(4, W_std=1.3),
                                stax.Relu(), stax.Dense(1))
  ref = kernel_fn(x1, x2, ("nngp", "ntk"))
  # The flattened x2 rows equal x1-shaped examples: same kernel either way.
  flat = kernel_fn(x1, x2.reshape(4, 12), ("nngp", "ntk"))
  assert_trees_close(flat, ref, TIGHT)
  out = nt.batch(kernel_fn, 2, 0)(x1, x2, ("nngp", "ntk"))
  assert_trees_close(ref, out, TIGHT)


# --- 3. multi-input and multi-output networks -----------------------------
@pytest.fixture(scope="module")
def two_inputs():
  rng = np.random.default_rng(6)
  return ([rng.normal(size=(5, 3)), rng.normal(size=(5, 2, 2))],
          [rng.normal(size=(4, 3)), rng.normal(size=(4, 2, 2))])


def _analytic_or_skip(kernel_fn, x1, x2, get):
  try:
    return kernel_fn(x1, x2, get)
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f"the analytic kernel_fn does not take list inputs yet "
                f"({type(e).__name__}: {e})")


MULTI_INPUT = stax.serial(
    stax.parallel(stax.Dense(4, W_std=1.4, b_std=0.1),
                  stax.serial(stax.Flatten(), stax.Dense(4, W_std=1.2))),
    stax.FanInSum(), stax.Relu(), stax.Dense(1, W_std=1.1, b_std=0.05))[2]
MULTI_OUTPUT = stax.parallel(
    stax.Dense(3, W_std=1.3),
    stax.serial(stax.Flatten(), stax.Dense(3), stax.Erf(), stax.Dense(1)))[2]


@pytest.mark.parametrize("kernel_fn", [MULTI_INPUT, MULTI_OUTPUT],
                         ids=["parallel-in", "parallel-out"])
@pytest.mark.parametrize("get", [None, ("nngp", "ntk"), "ntk"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_analytic_list_inputs_match_unbatched(two_inputs, kernel_fn, get,
                                              symmetric):
  x1, x2 = two_inputs
  x2 = None if symmetric else x2
  ref = _analytic_or_skip(kernel_fn, x1, x2, get)
  for device_count in (0, -1):
    out = nt.batch(kernel_fn, 2, device_count)(x1, x2, get)
    assert_trees_close(ref, out, TIGHT if device_count == 0 else SHARDED)
    for r, o in zip(*(jax.tree_util.tree_leaves(
        t, is_leaf=lambda k: isinstance(k, nt.Kernel)) for t in (ref, out))):
      if isinstance(r, nt.Kernel):
        assert (o.shape1, o.shape2) == (r.shape1, r.shape2)


def test_list_inputs_under_jit(two_inputs):
  x1, x2 = two_inputs
  ref = _analytic_or_skip(MULTI_OUTPUT, x1, x2, "nngp")
  batched = nt.batch(MULTI_OUTPUT, 2, 0)
  traced = jax.jit(lambda a, b: batched(a, b, "nngp"))(x1, x2)
  assert isinstance(traced, list) and len(traced) == 2
  assert_trees_close(batched(x1, x2, "nngp"), traced, TIGHT)
  assert_trees_close(ref, traced, TIGHT)


def test_list_inputs_of_a_plain_kernel_function(two_inputs):
  # Any kernel_fn of list inputs and list outputs, analytic core or not.
  x1, x2 = two_inputs

  def kernel_fn(a, b=None, get=None):
    b = a if b is None else b
    return [a[0] @ b[0].T,
            jnp.einsum("nij,mij->nm", jnp.sin(a[1]), jnp.sin(b[1]))]

  for second in (x2, None, (x2[0], x2[1])):
    ref = kernel_fn(x1, second)
    out = nt.batch(kernel_fn, 2, 0)(tuple(x1), second)
    assert isinstance(out, list)
    assert_trees_close(ref, out, TIGHT)


@pytest.mark.parametrize("x1, match", [
    ([np.ones((5, 3)), np.ones((4, 2))], "different numbers of examples"),
    ([np.ones((5, 3)), np.float64(1.0)], r"x1\[1\] has shape \(\)"),
    (np.ones(()), "needs a batch axis"),
    (np.ones((0, 3)), "holds no examples"),
])
def test_bad_inputs_name_the_problem(x1, match):
  with pytest.raises(BatchError, match=match):
    nt.batch(lambda a, b=None: a, 2, 0)(x1, None)
