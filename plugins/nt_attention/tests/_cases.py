"""Networks whose kernels are compared with Neural Tangents 0.6.5's numbers.

Written against a `stax` module passed in, so `data/make_nt_reference.py`
can build the same networks with NT's stax to produce the reference.
"""

import numpy as np


def inputs():
  rng = np.random.default_rng(11)
  x = dict(x1=rng.normal(size=(3, 5, 3)), x2=rng.normal(size=(2, 5, 3)),
           i1=rng.normal(size=(3, 3, 4, 2)), i2=rng.normal(size=(2, 3, 4, 2)))
  m1 = x["x1"].copy()
  m1[0, 3:] = 10.
  m1[2, 1:] = 10.
  m2 = x["x2"].copy()
  m2[1, 4:] = 10.
  x.update(m1=m1, m2=m2)
  x["p1"] = (rng.random((3, 5, 5)) < 0.4).astype(float)
  x["p2"] = (rng.random((2, 5, 5)) < 0.4).astype(float)
  x["q1"] = rng.normal(size=(3, 4, 4))
  x["q2"] = rng.normal(size=(2, 4, 4))
  x["s1"] = rng.integers(0, 5, size=(3, 7, 2))
  x["s2"] = rng.integers(0, 5, size=(2, 7, 2))
  return x


def _attn(stax, **kw):
  base = dict(n_chan_out=6, n_chan_key=6, n_chan_val=6, n_heads=2,
              W_key_std=1.3, W_query_std=0.7, W_value_std=1.2, W_out_std=0.9,
              b_std=0.2, W_pos_emb_std=0.8)
  base.update(kw)
  return stax.GlobalSelfAttention(**base)


def _head(stax):
  return [stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1, W_std=1.5,
                                                         b_std=0.05)]


def decay(d):
  return np.exp(-0.5 * d)


def cases(stax):
  """name -> (network, input names, kernel_fn keywords)."""
  a = lambda **kw: _attn(stax, **kw)  # noqa: E731
  flat = ("x1", "x2")
  out = {}
  for mech in ("SOFTMAX", "IDENTITY", "ABS", "RELU"):
    out[f"linear_{mech.lower()}"] = (
        stax.serial(stax.Dense(6, b_std=0.1), a(attention_mechanism=mech),
                    *_head(stax)), flat, {})
  out["linear_sum_val"] = (stax.serial(
      stax.Dense(6), a(pos_emb_type="SUM", val_pos_emb=True,
                       pos_emb_decay_fn=decay, pos_emb_p_norm=1.5),
      *_head(stax)), flat, {})
  out["linear_concat"] = (stax.serial(
      stax.Dense(6), a(attention_mechanism="RELU", pos_emb_type="CONCAT",
                       n_chan_pos_emb=4), *_head(stax)), flat, {})
  out["sqrt_identity_sum"] = (stax.serial(
      stax.Dense(6, b_std=0.1), a(attention_mechanism="IDENTITY",
                                  linear_scaling=False, pos_emb_type="SUM"),
      *_head(stax)), flat, {})
  out["sqrt_identity_concat_val"] = (a(
      attention_mechanism="IDENTITY", linear_scaling=False,
      pos_emb_type="CONCAT", val_pos_emb=True), ("x1", None), {})
  out["conv_2d_decay_full"] = (stax.serial(
      stax.Conv(6, (2, 2), padding="SAME"), stax.Relu(),
      a(pos_emb_type="CONCAT", pos_emb_decay_fn=decay)), ("i1", "i2"), {})
  out["masked_softmax_sum"] = (stax.serial(
      stax.Dense(6, b_std=0.1), a(pos_emb_type="SUM", val_pos_emb=True),
      *_head(stax)), ("m1", "m2"), dict(mask_constant=10.))
  out["masked_sqrt_concat"] = (stax.serial(
      stax.Dense(6, b_std=0.1), a(attention_mechanism="IDENTITY",
                                  linear_scaling=False, pos_emb_type="CONCAT"),
      *_head(stax)), ("m1", "m2"), dict(mask_constant=10.))
  out["full_batch"] = (stax.serial(
      stax.Dense(6, b_std=0.1), a(pos_emb_type="SUM", val_pos_emb=True),
      *_head(stax)), flat, dict(diagonal_batch=False))
  out["transformer"] = (stax.serial(
      stax.Dense(6), stax.FanOut(2), stax.parallel(a(), stax.Identity()),
      stax.FanInSum(), stax.LayerNorm(), stax.FanOut(2),
      stax.parallel(stax.serial(stax.Dense(6), stax.Relu(), stax.Dense(6)),
                    stax.Identity()),
      stax.FanInSum(), stax.LayerNorm(), stax.GlobalAvgPool(),
      stax.Dense(1)), flat, {})
  agg = [stax.Dense(6, b_std=0.1), stax.Relu()]
  out["aggregate_dense"] = (stax.serial(*agg, stax.Aggregate()), flat,
                            dict(pattern=("p1", "p2")))
  out["aggregate_dense_2d_axis"] = (stax.serial(
      stax.Conv(6, (2, 2), padding="SAME"), stax.Relu(),
      stax.Aggregate(aggregate_axis=2)), ("i1", "i2"),
      dict(pattern=("q1", "q2")))
  out["aggregate_sparse"] = (stax.serial(
      *agg, stax.Aggregate(implementation="SPARSE"), stax.GlobalSumPool(),
      stax.Dense(1)), flat, dict(pattern=("s1", "s2")))
  return out


def run(stax, name, x, get=("nngp", "ntk")):
  """The kernel of case `name` on inputs `x` (a dict of arrays)."""
  net, (n1, n2), kw = cases(stax)[name]
  kw = dict(kw)
  if "pattern" in kw:
    kw["pattern"] = tuple(x[p] for p in kw["pattern"])
  return net[2](x[n1], None if n2 is None else x[n2], get, **kw)
