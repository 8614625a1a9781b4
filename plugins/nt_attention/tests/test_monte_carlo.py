"""NNGP and NTK against Monte Carlo estimates over wide finite attention nets.

Error budget per entry (`ntcore.testing.check_monte_carlo`): `z = 6`
standard errors, measured from 16 independent groups of samples (a correct
entry fails with probability ~2e-5), plus a finite-width `bias` (relative to
the largest entry) bounded as follows.

* Raw inputs are deterministic, and everything after the attention is
  linear, so given the attention logits the estimate is unbiased at any
  width; the values' width (`n_heads * n_chan_val`) only adds noise.
* Logits `G = QK_std Q K^T / (c n_chan_key^alpha)`. With `alpha = 1/2`
  (independent Q and K) the kernels are bilinear in independent Q and K:
  exactly unbiased. With linear scaling `Var G(s, t) = QK_std^2 (K_ss K_tt +
  K_st^2) / n_chan_key <= 2 g^2 / n_chan_key` (`g = QK_std max|K|`, which
  is `QK_std`: inputs are scaled to mean square 1 at every position); the
  kernel is quadratic in the weights, whose second derivative in the logits
  is at most 1 per unit of `g` (softmax: 1/4), so the relative bias is at
  most `4 g^2 / n_chan_key` (`_key_bias`).
* A positional embedding of `c_p` channels has an empirical covariance with
  relative variance `<= 2 / c_p`, entering at most cubically (keys, queries
  and values): bias `<= 6 / c_p`.

Each estimate costs ~10 s of XLA compilation on a CPU, so branches share
one: `FanInSum` of independent Gaussian branches adds their kernels, and an
error in any branch shows in the sum at its full size. The NTK of these
networks contains `2 nngp` of each attention layer, and its estimate is far
less noisy than the NNGP's (whose noise is the 8-channel readout's), so the
NTK comparison is the sharp one: scaling the attention's parameter part of
the NTK (`2 nngp`) by 0.9 fails the mechanisms test. SUM embeddings, and
attention after a random input kernel with an input NTK, are tested in
`test_transformer.py`; every configuration also matches NT's numbers to
round-off (`test_attention.py`).
"""

import jax
import numpy as np
import pytest

import ntcore.testing
from ntcore import stax


def _unit(x):
  """Each position scaled to mean square 1: `K_ss = 1`, `|K_st| <= 1`."""
  return x / np.sqrt(np.mean(x ** 2, -1, keepdims=True))


rng = np.random.default_rng(2)
X1 = _unit(rng.normal(size=(2, 3, 2)))
X2 = _unit(rng.normal(size=(2, 3, 2)))
QK_STD = 0.8   # W_query_std; W_key_std = 1
N_POS = 128    # channels of CONCAT embeddings


def attention(**kwargs):
  kw = dict(n_chan_out=32, n_chan_key=512, n_chan_val=64, n_heads=2,
            W_query_std=QK_STD, W_value_std=1.2, W_out_std=0.9, b_std=0.1,
            W_pos_emb_std=0.7)
  kw.update(kwargs)
  return stax.GlobalSelfAttention(**kw)


def branches(kws):
  return [stax.FanOut(len(kws)),
          stax.parallel(*[attention(**kw) for kw in kws]), stax.FanInSum()]


def readout():
  return [stax.GlobalAvgPool(), stax.Dense(8, W_std=1.3, b_std=0.1)]


def _key_bias(kws):
  g = QK_STD  # unit inputs: max |K| = 1
  return max(4 * g ** 2 / kw.get("n_chan_key", 512) for kw in kws
             if kw.get("linear_scaling", True))


FIRST = {
    "mechanisms": [
        dict(), dict(attention_mechanism="IDENTITY"),
        dict(attention_mechanism="ABS", b_std=None),
        dict(attention_mechanism="RELU")],
    "sqrt_scaling_identity": [
        dict(attention_mechanism="IDENTITY", linear_scaling=False,
             n_heads=8, n_chan_key=8, n_chan_val=8),
        dict(attention_mechanism="IDENTITY", linear_scaling=False,
             pos_emb_type="CONCAT", n_chan_pos_emb=N_POS, val_pos_emb=True,
             pos_emb_decay_fn=lambda d: np.exp(-d), n_heads=8, n_chan_key=8,
             n_chan_val=8)],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FIRST))
def test_first_layer_agrees_with_monte_carlo(name):
  kws = FIRST[name]
  net = stax.serial(*branches(kws), *readout())
  linear = [kw for kw in kws if kw.get("linear_scaling", True)]
  bias = _key_bias(linear) if linear else 0.
  if any(kw.get("pos_emb_type") for kw in kws):
    bias += 6 / N_POS
  ntcore.testing.check_monte_carlo(net, X1, X2, key=jax.random.PRNGKey(5),
                                   n_samples=256, bias=bias)
