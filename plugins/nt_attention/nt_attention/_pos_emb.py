"""Positional embeddings of `GlobalSelfAttention`: finite draws and covariance.

A positional embedding `p` is a learned array of shape `(1, <spatial>, c_p)`
shared by every example, drawn `p = W_pos_emb_std * L z` with `z` standard
normal and `L L^T = R`, where `R[s, t] = decay(sum_i |s_i - t_i|^p_norm)` over
the position coordinates (`decay=None`: `R = I`, independent positions).
Averaged over its channels, `p` has covariance `W_pos_emb_std^2 R` with
itself, in every pair of examples alike.

SUM adds `p` to the inputs (`c_p` must equal the input width): the channel
covariance of `x + p` is `K + W_pos_emb_std^2 R`. CONCAT appends `p` as
extra channels: the mean over `c + c_p` channels is
`(c K + c_p W_pos_emb_std^2 R) / (c + c_p)`.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ntcore import ShapeError
from ntcore.enums import PositionalEmbedding


def covariance(shape: tuple[int, ...], p_norm: float,
               decay_fn: Optional[Callable]) -> np.ndarray:
  """`R`: `(S, S)` covariance of positions in natural (row-major) order."""
  size = math.prod(shape)
  if decay_fn is None:
    return np.eye(size)
  coords = np.stack(np.unravel_index(np.arange(size), shape), -1) if shape \
      else np.zeros((1, 0))
  dist = np.sum(np.abs(coords[:, None, :] - coords[None, :, :]) ** p_norm, -1)
  with jax.ensure_compile_time_eval():
    return np.asarray(decay_fn(jnp.asarray(dist)), np.float64)


def square_root(r: np.ndarray) -> np.ndarray:
  """`L` with `L L^T = R`, from the eigendecomposition.

  NT takes a Cholesky factor, which is NaN for a singular `R` (a decay that
  is constant over some positions); any square root gives the same
  distribution, and this one exists for every PSD `R`.
  """
  eig, vec = np.linalg.eigh((r + r.T) / 2)
  return vec * np.sqrt(np.maximum(eig, 0.))


def pos_channels(kind: PositionalEmbedding, n_chan_pos_emb: Optional[int],
                 n_chan_in: int, layer: str = "GlobalSelfAttention") -> int:
  """Channels of the positional embedding; checks SUM's width."""
  c_p = n_chan_in if n_chan_pos_emb is None else n_chan_pos_emb
  if kind is PositionalEmbedding.SUM and c_p != n_chan_in:
    raise ShapeError(
        f"{layer}(pos_emb_type='SUM', n_chan_pos_emb={n_chan_pos_emb}) adds "
        f"positional embeddings to inputs of {n_chan_in} channels, so they "
        f"need {n_chan_in} channels too. Leave n_chan_pos_emb=None, or use "
        f"pos_emb_type='CONCAT' to append {c_p} channels.")
  return c_p


def weights(kind: PositionalEmbedding, n_chan_in: int, c_p: int,
            w_std: float) -> tuple[float, float]:
  """`(input weight, R weight)` of the covariance of the embedded inputs."""
  if kind is PositionalEmbedding.CONCAT:
    total = n_chan_in + c_p
    return n_chan_in / total, w_std ** 2 * c_p / total
  return 1., w_std ** 2


def masked(r, pa, pb, one_batch_axis: bool):
  """`R` broadcast to a batch pair's layout, zero where a position is masked.

  Args:
    r: `(S, S)`.
    pa, pb: `(n_a, S)`, `(n_b, S)` position masks, or None.
    one_batch_axis: output `(n, S, S)` (a diagonal-batch `cov1`) rather than
      `(n_a, n_b, S, S)`.
  """
  if pa is None:
    return r
  zero = jnp.zeros((), r.dtype)
  if one_batch_axis:
    return jnp.where(pa[:, :, None] | pb[:, None, :], zero, r)
  return jnp.where(pa[:, None, :, None] | pb[None, :, None, :], zero, r)
