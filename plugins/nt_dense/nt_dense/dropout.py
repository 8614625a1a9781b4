"""`Dropout`: random masking of activations, finite and infinite width."""

from __future__ import annotations

import jax.numpy as jnp
from jax import random

from ntcore import KernelRequirementError, make_layer


def _scale_diagonal(mat, factor: float, one_batch_axis: bool,
                    diagonal_spatial: bool):
  """Multiplies the same-example, same-position entries of `mat` by `factor`.

  `mat` is `(n, n, <spatial>)` or, with `one_batch_axis`, `(n, <spatial>)`;
  spatial axes are interleaved pairs unless `diagonal_spatial`.
  """
  if mat is None or mat.ndim == 0:  # a 0-d NTK is a still-zero one
    return mat
  on_diagonal = jnp.ones((1,) * mat.ndim, bool)
  pairs = [] if one_batch_axis else [0]
  start = 1 if one_batch_axis else 2
  if not diagonal_spatial:
    pairs += list(range(start, mat.ndim, 2))
  for ax in pairs:
    n = mat.shape[ax]
    shape = [1] * mat.ndim
    shape[ax] = shape[ax + 1] = n
    on_diagonal = on_diagonal & jnp.eye(n, dtype=bool).reshape(shape)
  return jnp.where(on_diagonal, factor * mat, mat)


def Dropout(rate: float, mode: str = "train"):
  """Dropout: keep each activation with probability `rate`, scaled by 1/rate.

  `rate` is the *keep* probability, as in NT and `jax.example_libraries.stax`.

  Kernel: with independent masks `m ~ Bernoulli(rate) / rate` per example,
  position and channel, `E[m m'] = 1` for different entries and
  `E[m^2] = 1 / rate` for the same one. So in "train" mode the variances
  (the same-position diagonal of `cov1`, `cov2`) and, when `x2` is None, the
  same-example same-position entries of `nngp` and `ntk` are multiplied by
  `1 / rate`; everything else is unchanged and the output is not Gaussian.
  In "test" mode the layer is the identity. `x1_is_x2` is decided statically
  (`x2` is None), so unlike NT `kernel_fn(x, x)` does not scale `nngp`'s
  diagonal; pass `x2=None` for the kernel of a batch with itself.

  Args:
    rate: keep probability, in (0, 1].
    mode: "train" or "test".

  Raises:
    ValueError: for an invalid `rate` or `mode`, and from `apply_fn` in
      "train" mode without `rng`.
    KernelRequirementError: from `kernel_fn` in "train" mode applied to the
      raw inputs.
  """
  if mode not in ("train", "test"):
    raise ValueError(f"Dropout(mode={mode!r}): mode must be 'train' or 'test'.")
  if not 0. < rate <= 1.:
    raise ValueError(f"Dropout(rate={rate!r}): rate is the keep probability "
                     f"and must be in (0, 1].")

  def init_fn(key, input_shape):
    del key
    return input_shape, ()

  def apply_fn(params, inputs, rng=None, **kwargs):
    del params, kwargs
    if mode == "test":
      return inputs
    if rng is None:
      raise ValueError(
          "Dropout in 'train' mode needs a PRNG key: call "
          "apply_fn(params, inputs, rng=key) with key = jax.random.PRNGKey(...),"
          " or build the layer with mode='test'.")
    keep = random.bernoulli(rng, rate, inputs.shape)
    return jnp.where(keep, inputs / rate, jnp.zeros((), inputs.dtype))

  def rule(k, **kwargs):
    """Dropout: diagonal (same example, same position) entries times 1/rate."""
    del kwargs
    if mode == "test":
      return k
    if k.is_input:
      raise KernelRequirementError(
          "Dropout in 'train' mode cannot be applied to the raw inputs: their "
          "covariance is fixed, not an infinite-width layer's. Put a layer "
          "(e.g. Dense) before Dropout.")
    factor = 1. / rate
    ds, db = k.diagonal_spatial, k.diagonal_batch
    changes = dict(cov1=_scale_diagonal(k.cov1, factor, db, ds),
                   cov2=_scale_diagonal(k.cov2, factor, db, ds),
                   is_gaussian=False)
    if k.x1_is_x2:
      changes.update(nngp=_scale_diagonal(k.nngp, factor, False, ds),
                     ntk=_scale_diagonal(k.ntk, factor, False, ds))
    return k.replace(**changes)

  return make_layer("Dropout", init_fn, apply_fn, rule)
