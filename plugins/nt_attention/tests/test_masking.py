"""Variable-length sequences: a padded, masked batch is the unpadded sequences.

Padding positions (inputs equal to `mask_constant` in `kernel_fn`, `mask=`
in `apply_fn`) are never attended to, left out of pooling and normalization,
and their positional embeddings are zeroed, so each sequence's kernel (and
finite output) is what it is at its true length.
"""

import jax
import numpy as np
import pytest

from ntcore import stax

rng = np.random.default_rng(4)
PAD = 10.
LONGEST = 5


def sequences(lengths, channels=3):
  return [rng.normal(size=(n, channels)) for n in lengths]


def padded(seqs):
  out = np.full((len(seqs), LONGEST, seqs[0].shape[-1]), PAD)
  for i, s in enumerate(seqs):
    out[i, :len(s)] = s
  return out


def attention(**kw):
  base = dict(n_chan_out=4, n_chan_key=4, n_chan_val=4, n_heads=2, b_std=0.1)
  base.update(kw)
  return stax.GlobalSelfAttention(**base)


NETWORKS = {
    "softmax_sum_val_decay": dict(pos_emb_type="SUM", val_pos_emb=True,
                                  pos_emb_decay_fn=lambda d: 0.9 ** d),
    "relu_concat": dict(attention_mechanism="RELU", pos_emb_type="CONCAT",
                        n_chan_pos_emb=2),
    "sqrt_identity_sum": dict(attention_mechanism="IDENTITY",
                              linear_scaling=False, pos_emb_type="SUM"),
}


def network(kw):
  # Erf, not Relu: attention outputs are strongly correlated across
  # positions, and Relu's dual turns round-off there into ~1e-9 errors.
  return stax.serial(stax.Dense(4, b_std=0.2), attention(**kw),
                     stax.LayerNorm(), stax.Erf(), stax.Dense(4), stax.Erf(),
                     stax.GlobalAvgPool(), stax.Dense(1, b_std=0.1))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_masked_kernel_is_the_kernel_at_the_true_lengths(name):
  _, _, kernel_fn = network(NETWORKS[name])
  s1, s2 = sequences([5, 3, 2]), sequences([3])
  got = kernel_fn(padded(s1), padded(s2), ("nngp", "ntk"), mask_constant=PAD)
  own = kernel_fn(padded(s1), None, ("nngp", "ntk"), mask_constant=PAD)
  # Every pair of equal lengths can be computed unpadded.
  for i, a in enumerate(s1):
    want = kernel_fn(a[None], None, ("nngp", "ntk"))
    for g, w in zip(own, want):
      np.testing.assert_allclose(g[i, i], w[0, 0], rtol=1e-10)
    for j, b in enumerate(s2):
      if len(a) != len(b):
        continue
      want = kernel_fn(a[None], b[None], ("nngp", "ntk"))
      for g, w in zip(got, want):
        np.testing.assert_allclose(g[i, j], w[0, 0], rtol=1e-10)


def test_masked_outputs_of_the_finite_network_are_the_unpadded_ones():
  kw = dict(pos_emb_type="SUM", val_pos_emb=True)
  init_fn, apply_fn, _ = network(kw)
  seqs = sequences([5, 3, 1])
  x = padded(seqs)
  _, params = jax.jit(init_fn, static_argnums=1)(jax.random.PRNGKey(0),
                                                 x.shape)
  mask = x[..., :1] == PAD
  out = jax.jit(stax.unmask_fn(apply_fn))(params, x, mask=mask)
  for i, s in enumerate(seqs):
    short = list(params)
    q, k, v, o, b, pos = short[1]
    short[1] = (q, k, v, o, b, pos[:, :len(s)])
    want = jax.jit(apply_fn)(short, s[None])
    np.testing.assert_allclose(out[i], want[0], rtol=1e-10)
  # Without the mask the padding leaks in.
  assert not np.allclose(jax.jit(apply_fn)(params, x)[1], out[1])


@pytest.mark.parametrize("mechanism", ["SOFTMAX", "IDENTITY"])
def test_all_masked_example_has_zero_kernel_not_nan(mechanism):
  x = rng.normal(size=(2, 4, 3))
  x[1] = PAD
  k = stax.serial(stax.Dense(4), attention(attention_mechanism=mechanism,
                                           b_std=None))[2](
      x, None, ("nngp", "ntk"), mask_constant=PAD)
  for m in k:
    assert np.all(np.isfinite(m))
    assert np.all(np.asarray(m)[1] == 0) and np.any(np.asarray(m)[0] != 0)
