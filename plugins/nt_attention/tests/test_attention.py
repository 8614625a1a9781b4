"""GlobalSelfAttention: NT's numbers, the suite, the finite layer, errors."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntcore.testing
from ntcore import KernelRequirementError, ShapeError, stax
from ntcore.errors import NoAnalyticKernelError

import _cases

REFERENCE = np.load(pathlib.Path(__file__).parent / "data" / "nt_reference.npz")
X = _cases.inputs()


@pytest.mark.parametrize("name", sorted(_cases.cases(stax)))
def test_kernel_matches_neural_tangents(name):
  # float64 round-off: the kernels are a few matrix products away from the
  # inputs. Relu's dual amplifies round-off near correlation 1 to ~1e-10.
  nngp, ntk = _cases.run(stax, name, X)
  for field, got in (("nngp", nngp), ("ntk", ntk)):
    want = REFERENCE[f"{name}/{field}"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-9,
                               atol=1e-9 * np.abs(want).max())


def attention(**kw):
  base = dict(n_chan_out=4, n_chan_key=4, n_chan_val=4, n_heads=2, b_std=0.1,
              W_query_std=1.2)
  base.update(kw)
  return stax.GlobalSelfAttention(**base)


SUITE = {
    "softmax": dict(),
    "identity_sum_val": dict(attention_mechanism="IDENTITY",
                             pos_emb_type="SUM", val_pos_emb=True),
    "relu_concat_decay": dict(attention_mechanism="RELU",
                              pos_emb_type="CONCAT", n_chan_pos_emb=3,
                              pos_emb_decay_fn=lambda d: 1 / (1 + d)),
    "sqrt_identity_concat": dict(attention_mechanism="IDENTITY",
                                 linear_scaling=False, pos_emb_type="CONCAT"),
}


@pytest.mark.parametrize("name, with_x2", [
    ("softmax", True), ("identity_sum_val", False),
    ("relu_concat_decay", True), ("sqrt_identity_concat", False)])
def test_conformance_suite(name, with_x2):
  # Full spatial outputs: the suite checks symmetry and PSD over (example,
  # position) pairs.
  net = stax.serial(stax.Dense(4, b_std=0.1), attention(**SUITE[name]))
  x2 = X["x2"] if with_x2 else None
  ntcore.testing.check_kernel_fn(net, X["x1"], x2)


def test_conformance_suite_on_a_2d_full_spatial_kernel():
  # After a Conv the kernel is stored reversed (as NT); attention keeps it so.
  net = stax.serial(stax.Conv(4, (2, 2), padding="SAME"),
                    attention(pos_emb_type="SUM", val_pos_emb=True))
  x = X["i1"][:2, :2, :3]
  ntcore.testing.check_kernel_fn(net, x)
  k = net[2](x, None)
  assert k.is_reversed and k.nngp.shape == (2, 2, 3, 3, 2, 2)


def test_linear_scaling_identity_is_the_closed_form():
  # On raw inputs: nngp_ab = OV^2 A_a K_ab A_b^T with A = QK_std K_aa.
  x1, x2 = X["x1"], X["x2"]
  qk, ov = 0.7 * 1.3, 1.1 * 0.8
  layer = stax.GlobalSelfAttention(2, 2, 2, 1, attention_mechanism="IDENTITY",
                                   W_query_std=0.7, W_key_std=1.3,
                                   W_value_std=1.1, W_out_std=0.8)
  k12 = np.einsum("asc,btc->abst", x1, x2) / 3
  a1 = qk * np.einsum("asc,atc->ast", x1, x1) / 3
  a2 = qk * np.einsum("asc,atc->ast", x2, x2) / 3
  want = ov ** 2 * np.einsum("ast,abtu,bvu->absv", a1, k12, a2)
  got = layer[2](x1, x2, "nngp")
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_finite_layer_shapes_params_and_softmax_weights():
  layer = attention(n_chan_out=7, pos_emb_type="CONCAT", n_chan_pos_emb=5,
                    val_pos_emb=True)
  init = jax.jit(layer.init_fn, static_argnums=1)
  apply = jax.jit(layer.apply_fn)
  out_shape, params = init(jax.random.PRNGKey(0), (3, 5, 2))
  w_query, w_key, w_val, w_out, b, pos = params
  assert out_shape == (3, 5, 7)
  assert w_query is None  # tied with the keys under linear scaling
  assert w_key.shape == (2, 7, 4) and w_val.shape == (2, 7, 4)
  assert w_out.shape == (8, 7) and b.shape == (1, 1, 7)
  assert pos.shape == (1, 5, 5)
  y = apply(params, X["x1"][..., :2])
  assert y.shape == (3, 5, 7) and bool(jnp.all(jnp.isfinite(y)))
  # Softmax weights sum to 1: with values and outputs the identity map,
  # the output at every position is the mean of constant inputs.
  plain = stax.GlobalSelfAttention(2, 4, 2, 1, W_out_std=2.)
  _, (q, k, _, _, _, _) = plain.init_fn(jax.random.PRNGKey(1), (1, 5, 2))
  eye = (q, k, jnp.eye(2)[None], jnp.eye(2), None, None)
  const = jnp.ones((1, 5, 2))
  np.testing.assert_allclose(jax.jit(plain.apply_fn)(eye, const), const,
                             rtol=1e-12)


def test_batch_and_channel_axes_can_move():
  layer = attention(batch_axis=1, channel_axis=0, pos_emb_type="SUM")
  x = np.moveaxis(X["x1"], (0, 2), (1, 0))
  out_shape, params = jax.jit(layer.init_fn, static_argnums=1)(
      jax.random.PRNGKey(0), x.shape)
  assert out_shape == (4, 3, 5)
  assert jax.jit(layer.apply_fn)(params, x).shape == (4, 3, 5)
  moved = layer.kernel_fn(x, None, "nngp")
  plain = attention(pos_emb_type="SUM").kernel_fn(X["x1"], None, "nngp")
  np.testing.assert_allclose(moved, plain, rtol=1e-12)


# ------------------------------------------------------------------- errors

def test_softmax_without_linear_scaling_points_to_monte_carlo():
  layer = attention(linear_scaling=False)
  with pytest.raises(NoAnalyticKernelError, match="monte_carlo_kernel_fn"):
    layer.kernel_fn(X["x1"], None)
  with pytest.raises(NotImplementedError, match="linear_scaling=True"):
    attention(linear_scaling=False, attention_mechanism="RELU").kernel_fn(
        X["x1"], None)
  # The finite network is fine.
  _, params = jax.jit(layer.init_fn, static_argnums=1)(
      jax.random.PRNGKey(0), (3, 5, 3))
  assert jax.jit(layer.apply_fn)(params, X["x1"]).shape == (3, 5, 4)


@pytest.mark.parametrize("kw, match", [
    (dict(attention_mechanism="GELU"), "'SOFTMAX', 'IDENTITY'"),
    (dict(pos_emb_type="ADD"), "'NONE', 'SUM' or 'CONCAT'"),
])
def test_bad_choices_name_the_options(kw, match):
  with pytest.raises(ValueError, match=match):
    attention(**kw)


def test_sum_embedding_of_another_width_says_how_to_fix():
  layer = attention(pos_emb_type="SUM", n_chan_pos_emb=5)
  with pytest.raises(ShapeError, match="CONCAT"):
    layer.init_fn(jax.random.PRNGKey(0), (3, 5, 3))
  with pytest.raises(ShapeError, match="n_chan_pos_emb=None"):
    layer.kernel_fn(X["x1"], None)


def test_diagonal_spatial_request_is_refused():
  with pytest.raises(KernelRequirementError, match="diagonal_spatial=True"):
    attention().kernel_fn(X["x1"], None, diagonal_spatial=True)
