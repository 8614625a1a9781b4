"""`nt.batch` against the unbatched kernel functions (end to end, real plugins).

conftest.py gives 2 CPU devices, so `device_count=-1` runs blocks through
`shard_map` two at a time and `device_count=0` calls the kernel function
block by block.
"""


import jax
import numpy as np
import pytest

import ntcore as nt
from ntcore import stax
from ntcore.errors import BatchError

# Analytic kernels are compared to round-off. Blocks run under shard_map are
# compiled as one program with different fusion; ReLU's arc-cosine near
# correlation 1 (the diagonal) turns ulp differences into ~1e-9.
TIGHT = dict(rtol=1e-12, atol=1e-14)
SHARDED = dict(rtol=1e-8, atol=1e-8)


def assert_leaves_close(ref, out, tol):
  ref_leaves = jax.tree_util.tree_leaves(ref)
  out_leaves = jax.tree_util.tree_leaves(out)
  assert len(ref_leaves) == len(out_leaves)
  for a, b in zip(ref_leaves, out_leaves):
    assert np.shape(a) == np.shape(b)
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), **tol)


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  return rng.normal(size=(7, 4)), rng.normal(size=(5, 4))


@pytest.fixture(scope="module")
def fc():
  return stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Relu(),
                     stax.Dense(1, W_std=1.2, b_std=0.05))


@pytest.mark.parametrize("device_count, batch_size", [
    (0, 2), (0, 3), (0, 10), (-1, 3), (-1, 7), (-1, 0)])
@pytest.mark.parametrize("symmetric", [True, False])
def test_fc_kernel_matches_unbatched(data, fc, device_count, batch_size,
                                     symmetric):
  x1, x2 = data
  x2 = None if symmetric else x2
  kernel_fn = fc[2]
  batched = nt.batch(kernel_fn, batch_size, device_count)
  ref, out = kernel_fn(x1, x2), batched(x1, x2)
  assert isinstance(out, nt.Kernel)
  tol = TIGHT if device_count == 0 else SHARDED
  for field in ("nngp", "ntk", "cov1", "cov2"):
    if getattr(ref, field) is None:
      assert getattr(out, field) is None
    else:
      np.testing.assert_allclose(getattr(out, field), getattr(ref, field),
                                 **tol)
  assert (out.shape1, out.shape2, out.x1_is_x2) == (
      ref.shape1, ref.shape2, ref.x1_is_x2)


@pytest.mark.parametrize("get", ["nngp", "cov1", ("ntk", "nngp"),
                                 ("nngp", "cov1", "cov2")])
def test_get_forms_match(data, fc, get):
  x1, x2 = data
  kernel_fn = fc[2]
  for second in (None, x2):
    ref = kernel_fn(x1, second, get)
    out = nt.batch(kernel_fn, 3, 0)(x1, second, get=get)
    assert type(out).__name__ == type(ref).__name__
    if isinstance(get, tuple):
      assert out._fields == ref._fields
    assert_leaves_close(ref, out, TIGHT)


def test_symmetric_computes_blocks_on_and_above_diagonal(data, fc):
  x1, _ = data
  batched = nt.batch(fc[2], 2, 0)
  batched(x1, None, "nngp")
  t = 4  # ceil(7 / 2) row blocks
  assert batched.last_run == dict(total=t * (t + 1) // 2,
                                  computed=t * (t + 1) // 2, loaded=0)
  batched(x1, x1, "nngp")
  assert batched.last_run["computed"] == t * t


def test_dropout_term_stays_on_the_diagonal(data):
  # Train-mode Dropout adds variance only where x1 and x2 are the same
  # example: diagonal blocks are kernel_fn(x1_i, None) and get it, blocks
  # off the diagonal are kernel_fn(x1_i, x1_j) and must not.
  x1, _ = data
  kernel_fn = stax.serial(stax.Dense(8, W_std=1.5), stax.Erf(),
                          stax.Dropout(0.7, mode="train"), stax.Dense(1))[2]
  ref = kernel_fn(x1, None, ("nngp", "ntk"))
  out = nt.batch(kernel_fn, 3, 0)(x1, None, ("nngp", "ntk"))
  assert_leaves_close(ref, out, TIGHT)
  no_dropout = stax.serial(stax.Dense(8, W_std=1.5), stax.Erf(),
                           stax.Dense(1))[2](x1, None, "nngp")
  assert np.all(np.diag(out.nngp) > np.diag(no_dropout) + 1e-3)


def test_store_on_host_returns_cpu_arrays(data, fc):
  x1, x2 = data
  out = nt.batch(fc[2], 2, store_on_device=False)(x1, x2, "ntk")
  assert out.devices() == {jax.local_devices(backend="cpu")[0]}
  np.testing.assert_allclose(out, fc[2](x1, x2, "ntk"), **SHARDED)


def test_cnn_with_pooling_matches_unbatched():
  x1 = np.random.default_rng(1).normal(size=(5, 4, 4, 2))
  _, _, kernel_fn = stax.serial(
      stax.Conv(3, (3, 3), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
      stax.AvgPool((2, 2)), stax.GlobalAvgPool(), stax.Dense(1))
  ref = kernel_fn(x1, None, ("nngp", "ntk"))
  out = nt.batch(kernel_fn, 2, -1)(x1, None, ("nngp", "ntk"))
  assert_leaves_close(ref, out, SHARDED)


@pytest.mark.parametrize("x2_size", [None, 4])
def test_attention_model_matches_unbatched(x2_size):
  # Attention mixes positions, not examples, so blocks of examples are exact.
  rng = np.random.default_rng(3)
  x1 = rng.normal(size=(5, 6, 3))
  x2 = None if x2_size is None else rng.normal(size=(x2_size, 6, 3))
  _, _, kernel_fn = stax.serial(
      stax.Dense(8, W_std=1.2, b_std=0.), stax.GlobalSelfAttention(
          8, 8, 8, 2, attention_mechanism="SOFTMAX", pos_emb_type="SUM"),
      stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1, W_std=1.3, b_std=0.1))
  ref = kernel_fn(x1, x2, ("nngp", "ntk"))
  for batch_size, devices in ((2, 0), (3, -1)):
    out = nt.batch(kernel_fn, batch_size, devices)(x1, x2, ("nngp", "ntk"))
    assert_leaves_close(ref, out, TIGHT if devices == 0 else SHARDED)


def test_spatial_kernel_is_mirrored_with_its_spatial_pairs():
  # nngp (n1, n2, h, h', w, w'): a block below the diagonal is the transpose
  # of the one above in the batch axes *and* in each spatial pair. Erf is
  # smooth, so blocks agree with the whole kernel to round-off.
  rng = np.random.default_rng(2)
  x1 = rng.normal(size=(5, 4, 3, 2))
  _, _, kernel_fn = stax.serial(stax.Conv(3, (2, 2), padding="SAME"),
                                stax.Erf(), stax.Conv(2, (2, 2)))
  ref = kernel_fn(x1, None)
  batched = nt.batch(kernel_fn, 2, 0)
  out = batched(x1, None)
  assert out.nngp.shape == ref.nngp.shape == (5, 5, 3, 3, 2, 2)
  assert batched.last_run["computed"] == 6  # 3 diagonal + 3 above
  assert_leaves_close(ref, out, TIGHT)
  flat = nt.batch(kernel_fn, 2, 0)(x1, None, "nngp")  # a bare array
  np.testing.assert_allclose(flat, ref.nngp, **TIGHT)


def test_empirical_kernel_fn(data):
  x1, _ = data
  init_fn, apply_fn, _ = stax.serial(stax.Dense(8), stax.Relu(),
                                     stax.Dense(3))
  _, params = init_fn(jax.random.PRNGKey(1), x1.shape)
  # trace_axes=() gives (n1, n2, 3, 3) arrays of unknown layout: blocks
  # below the diagonal are computed, not mirrored.
  # (x2 given is exercised by the Monte Carlo test, which averages these.)
  kernel_fn = nt.empirical_kernel_fn(apply_fn, trace_axes=())
  ref = kernel_fn(x1, None, ("nngp", "ntk"), params)
  batched = nt.batch(kernel_fn, 3, -1)
  out = batched(x1, None, ("nngp", "ntk"), params)
  assert type(out).__name__ == "EmpiricalKernel"
  assert out.ntk.shape == (7, 7, 3, 3)
  assert batched.last_run["computed"] == 9  # 3 diagonal + 6 off it
  assert_leaves_close(ref, out, SHARDED)


def _mc_init_fn(key, input_shape):
  # A plain network (one PRNG call): a stax one takes ~10 s to compile here.
  d = input_shape[-1]
  w = jax.random.normal(key, (d * 5 + 5,))
  return input_shape[:-1] + (1,), (w[:d * 5].reshape(d, 5), w[d * 5:, None])


def _mc_apply_fn(params, x):
  return jax.numpy.tanh(x @ params[0]) @ params[1]


@pytest.mark.slow  # two Monte Carlo compilations
def test_monte_carlo_kernel_fn(data):
  x1, x2 = data
  kernel_fn = nt.monte_carlo_kernel_fn(_mc_init_fn, _mc_apply_fn,
                                       jax.random.PRNGKey(3), 3)
  ref = kernel_fn(x1[:6], x2[:3], None)
  out = nt.batch(kernel_fn, 3, -1)(x1[:6], x2[:3], None)
  assert type(out).__name__ == "MonteCarloKernel"
  assert_leaves_close(ref, out, dict(rtol=1e-10, atol=1e-12))


def test_plain_function_with_per_example_keywords(data):
  # NT's convention: an array keyword given as a pair (v1, v2) holds values
  # per example of x1 and x2 and is cut into blocks with them.
  x1, x2 = data
  s1, s2 = np.arange(7.0), np.arange(5.0) - 2

  def kernel_fn(a, b=None, get=None, shift=None, scale=1.0):
    t1, t2 = shift
    b, t2 = (a, t1) if b is None else (b, t2)
    k = scale * (a + t1[:, None]) @ (b + t2[:, None]).T
    return k, jax.numpy.diagonal(k) if get == "with_diag" else k

  for second, shift, devices in ((x2, (s1, s2), -1), (None, (s1, None), 0),
                                 (None, (s1, s1), -1)):
    ref = kernel_fn(x1, second, shift=(s1, s1 if second is None else s2),
                    scale=2.0)
    out = nt.batch(kernel_fn, 3, devices)(x1, second, shift=shift, scale=2.0)
    assert isinstance(out, tuple)
    assert_leaves_close(ref, out, TIGHT)


def test_kernel_input_is_passed_through():
  k = nt.Kernel(nngp=np.ones((3, 3)), ntk=None, cov1=np.ones(3), cov2=None)
  out = nt.batch(lambda *a, **kw: (a, kw), 2)(k, None, "nngp", x=1)
  assert out == ((k, None, "nngp"), dict(x=1))


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=-1), "non-negative int"),
    (dict(batch_size=2.5), "non-negative int"),
    (dict(device_count=-2), "device_count"),
])
def test_bad_arguments(fc, kwargs, match):
  with pytest.raises(BatchError, match=match):
    nt.batch(fc[2], **kwargs)


def test_too_many_devices(data, fc):
  with pytest.raises(BatchError, match="only 2 devices"):
    nt.batch(fc[2], 2, device_count=3)(data[0], None)


def test_full_batch_covariance_cannot_be_batched(data, fc):
  with pytest.raises(BatchError, match="diagonal_batch"):
    nt.batch(fc[2], 2, 0)(data[0], data[1], diagonal_batch=False)
