"""The infinite-width kernel of `GlobalSelfAttention` (Hron et al. 2020).

Notation, per pair of examples `(a, b)` and positions `s, t` (flattened):
`K` is the input covariance, `Th` the input NTK, `R` the positional
covariance (`_pos_emb.py`); `Kq = w_x K + w_p R` is the covariance of what
keys and queries see, `Kv` that of what values see (`Kq` if `val_pos_emb`,
else `K`), `Thq`, `Thv` likewise (`w_p R` enters the NTK too: the embeddings
are trained parameters). Only the widths of keys, values and heads go to
infinity; the rule holds for any input kernel, Gaussian or not, and the
output is Gaussian (a sum over infinitely many heads).
"""

from __future__ import annotations

import jax.numpy as jnp

from ntcore.errors import NO_ANALYTIC_KERNEL, NoAnalyticKernelError

from nt_attention import _pos_emb, _spatial
from nt_attention._mechanism import AttentionMechanism
from nt_attention._pos_emb import PositionalEmbedding


def make_rule(*, mechanism, linear_scaling, qk_std, ov_std, b_std, pos_kind,
              pos_emb_p_norm, pos_emb_decay_fn, n_chan_pos_emb, w_pos_emb_std,
              val_pos_emb):
  """The kernel rule of one `GlobalSelfAttention` configuration."""
  b_var = 0. if b_std is None else b_std ** 2
  use_pos = pos_kind is not PositionalEmbedding.NONE

  def inputs(k, mats, p1, p2):
    """`(Kq, Kv, Thq, Thv)` dicts over fields, from the input matrices."""
    if not use_pos:
      return mats, mats, mats, mats
    c_in = k.shape1[k.channel_axis]
    c_p = _pos_emb.pos_channels(pos_kind, n_chan_pos_emb, c_in)
    w_x, w_p = _pos_emb.weights(pos_kind, c_in, c_p, w_pos_emb_std)
    r = _pos_emb.covariance(k.spatial_shape(), pos_emb_p_norm,
                            pos_emb_decay_fn)
    r = jnp.asarray(r, k.nngp.dtype)
    pairs = dict(nngp=(p1, p2, False), ntk=(p1, p2, False),
                 cov1=(p1, p1, k.diagonal_batch),
                 cov2=(p2, p2, k.diagonal_batch))
    q = {}
    for field, m in mats.items():
      if m is None:
        q[field] = None
        continue
      pa, pb, one = pairs[field]
      r_f = jnp.broadcast_to(_pos_emb.masked(r, pa, pb, one),
                             mats["nngp" if m.ndim == 0 else field].shape)
      if m.ndim == 0:  # a still-zero NTK (no parameters before this layer)
        m = jnp.zeros_like(mats["nngp"])
      q[field] = w_x * m + w_p * r_f
    return (q, q if val_pos_emb else mats, q, q if val_pos_emb else mats)

  def rule(k, **kwargs):
    """GlobalSelfAttention (Hron et al. 2020). Linear scaling:
    `nngp_ab = OV_std^2 A_a Kv_ab A_b^T + b_std^2`, `A_a = phi(QK_std Kq_aa)`,
    `ntk_ab = OV_std^2 A_a Thv_ab A_b^T + 2 nngp_ab - b_std^2`. Square-root
    scaling, IDENTITY: `nngp_ab = QK_std^2 OV_std^2 <Kq_ab, Kv_ab> Kq_ab +
    b_std^2` (see `_linear`, `_identity_sqrt`)."""
    del kwargs
    if not linear_scaling and mechanism is not AttentionMechanism.IDENTITY:
      raise NoAnalyticKernelError(NO_ANALYTIC_KERNEL.format(
          layer="GlobalSelfAttention",
          what=f"attention_mechanism={mechanism.value!r} with "
               f"linear_scaling=False",
          why="the attention weights are a nonlinearity of Gaussian logits "
              "with no closed-form expectation (Hron et al. 2020)",
          fix="use linear_scaling=True (tied query/key weights, logits "
              "scaled by 1/n_chan_key), or attention_mechanism='IDENTITY'"))
    reversed_ = k.is_reversed
    k = k.natural()
    mats = _spatial.matrices(k)
    p1, p2 = _spatial.both_positions(k)
    kq, kv, thq, thv = inputs(k, mats, p1, p2)
    if linear_scaling:
      out = _linear(k, kq, kv, thv, p1, p2)
    else:
      out = _identity_sqrt(k, kq, kv, thq, thv)
    return _spatial.restore(k, out, reversed_).replace(is_gaussian=True)

  def _linear(k, kq, kv, thv, p1, p2):
    """Tied weights, 1/n_chan_key scaling: deterministic attention weights.

    `A_a = phi(QK_std Kq_aa)` (softmax over keys `t`);
    `nngp_ab = OV_std^2 A_a Kv_ab A_b^T + b_std^2` (likewise `cov1`, `cov2`);
    `ntk_ab = OV_std^2 A_a Thv_ab A_b^T + 2 (nngp_ab - b_std^2) + b_std^2`:
    `W_value` and `W_out` each contribute `nngp - b_std^2`, the bias
    `b_std^2`; the gradient through the logits is O(1/n_chan_key) and
    vanishes, so keys (and embeddings outside values) contribute nothing.
    """
    def weights(cov, p):
      own = cov if k.diagonal_batch else _batch_diagonal(cov)
      return mechanism.weights(qk_std * own,
                               None if p is None else p[:, None, :])

    a1 = weights(kq["cov1"], p1)
    a2 = a1 if kq["cov2"] is None else weights(kq["cov2"], p2)

    def sandwich(m, wa, wb, one_batch_axis):
      if m is None:
        return None
      if one_batch_axis:
        return jnp.einsum("ast,atu,avu->asv", wa, m, wb)
      return jnp.einsum("ast,abtu,bvu->absv", wa, m, wb)

    db = k.diagonal_batch
    out = dict(nngp=sandwich(kv["nngp"], a1, a2, False),
               cov1=sandwich(kv["cov1"], a1, a1, db),
               cov2=sandwich(kv["cov2"], a2, a2, db))
    out = {f: None if m is None else ov_std ** 2 * m + b_var
           for f, m in out.items()}
    th = thv["ntk"]
    if th is None:
      out["ntk"] = None
    else:
      back = 0. if th.ndim == 0 else ov_std ** 2 * sandwich(th, a1, a2, False)
      # `nngp + nngp`, not `2. * nngp`: XLA's CPU backend can fuse this
      # sum into a following reduction (GlobalAvgPool) as a YNNPACK call,
      # which takes the constant 2 as an operand broadcast to the full
      # (n1, n2, S, S) shape: a 64 MiB temporary at N = 256, S = 16.
      out["ntk"] = back + (out["nngp"] + out["nngp"]) - b_var
    return out

  def _identity_sqrt(k, kq, kv, thq, thv):
    """Independent Q, K, 1/sqrt(n_chan_key) scaling, IDENTITY mechanism.

    The logits converge to a Gaussian with
    `E[G_a(s, t) G_b(u, v)] = QK_std^2 Kq_ab(s, u) Kq_ab(t, v)`, independent
    of the values, so with `D_ab = sum_{t, v} Kq_ab(t, v) Kv_ab(t, v)`:
    `nngp_ab = QK_std^2 OV_std^2 D_ab Kq_ab + b_std^2`. The output is
    trilinear in queries, keys and values, and `W_query`, `W_key`,
    `W_value`, `W_out` each contribute `nngp - b_std^2`, so
    `ntk_ab = QK_std^2 OV_std^2 [D_ab Thq_ab + Kq_ab (sum Thq Kv + Kq Thv)
    + 4 D_ab Kq_ab] + b_std^2`.
    """
    std2 = (qk_std * ov_std) ** 2

    def total(x, y):  # sum over all position pairs, kept as (..., 1, 1)
      return jnp.sum(x * y, (-2, -1), keepdims=True)

    out = {}
    for f in ("nngp", "cov1", "cov2"):
      q, v = kq[f], kv[f]
      out[f] = None if q is None else std2 * total(q, v) * q + b_var
    q, v, tq, tv = kq["nngp"], kv["nngp"], thq["ntk"], thv["ntk"]
    if tq is None:
      out["ntk"] = None
    else:
      tq, tv = (jnp.broadcast_to(t, q.shape) for t in (tq, tv))
      d = total(q, v)
      cross = total(tq, v) + total(q, tv)
      out["ntk"] = std2 * (d * tq + q * cross + 4. * d * q) + b_var
    return out

  return rule


def _batch_diagonal(m):
  """`(n, n, ...)` -> `(n, ...)`."""
  return jnp.moveaxis(jnp.diagonal(m, axis1=0, axis2=1), -1, 0)

