"""`LayerNorm`: finite layer normalisation and its infinite-width kernel."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax.numpy as jnp

from ntcore import KernelRequirementError, Requirements, kernel_ops, make_layer

Axes = Union[int, Sequence[int]]


def _canonical_axes(axis: Axes, ndim: int) -> tuple[int, ...]:
  axes = (axis,) if isinstance(axis, int) else tuple(axis)
  return tuple(sorted({a % ndim for a in axes}))


def LayerNorm(axis: Axes = -1, eps: float = 1e-12, batch_axis: int = 0,
              channel_axis: int = -1):
  """Layer normalisation `(x - mean) / sqrt(eps + var)` over `axis`.

  Kernel: at infinite width the channel mean of Gaussian (zero-mean)
  pre-activations vanishes and their mean square concentrates at the
  variance, so the normaliser of example `a` is the deterministic
  `s_a = eps + mean over the normalized positions of var_a(position)` and

      nngp'(a, b) = nngp(a, b) / sqrt(s_a s_b)

  (likewise `cov1`, `cov2`, and the NTK, since `s` is constant in the
  limit). With only the channel axis in `axis`, `s_a` is each position's own
  variance; spatial axes in `axis` average the variances over those
  positions (masked positions excluded), and the batch axis averages over
  the batch too (then the kernel depends on the whole batch, as in NT). The
  output stays Gaussian.

  Args:
    axis: axes to normalize over; must include the channel axis.
    eps: added to the variance before the square root.
    batch_axis: batch axis of the inputs.
    channel_axis: channel axis of the inputs.

  Raises:
    KernelRequirementError: from `kernel_fn`, if `axis` leaves out the
      channel axis (the normaliser would not concentrate), or if the input
      is not Gaussian (the channel mean would not vanish).
  """
  def init_fn(key, input_shape):
    del key
    return input_shape, ()

  def apply_fn(params, inputs, mask=None, **kwargs):
    """Normalizes `inputs`; entries where `mask` is True are left out of the
    mean and variance (as NT's `mean_and_var`)."""
    del params, kwargs
    axes = _canonical_axes(axis, inputs.ndim)
    if mask is None:
      mean = jnp.mean(inputs, axes, keepdims=True)
      var = jnp.mean((inputs - mean) ** 2, axes, keepdims=True)
    else:
      keep = jnp.broadcast_to(~mask, inputs.shape)
      count = jnp.maximum(jnp.sum(keep, axes, keepdims=True), 1)
      zero = jnp.zeros((), inputs.dtype)
      mean = jnp.sum(jnp.where(keep, inputs, zero), axes, keepdims=True) / count
      var = jnp.sum(jnp.where(keep, (inputs - mean) ** 2, zero), axes,
                    keepdims=True) / count
    return (inputs - mean) / jnp.sqrt(eps + var)

  def rule(k, **kwargs):
    """LayerNorm: `nngp / sqrt(s_a s_b)`, `s = eps + mean variance over axis`."""
    del kwargs
    ndim = len(k.shape1)
    axes = _canonical_axes(axis, ndim)
    if k.channel_axis not in axes:
      raise KernelRequirementError(
          f"LayerNorm(axis={axis!r}) does not normalize over the channel axis "
          f"({k.channel_axis}) of its input of shape {k.shape1}; in the "
          f"infinite-width limit only a mean over channels concentrates to a "
          f"kernel. Include the channel axis in `axis` (e.g. axis=-1).")
    spatial = [i for i in range(ndim) if i not in (k.batch_axis, k.channel_axis)]
    if k.is_reversed:
      spatial = spatial[::-1]
    kernel_axes = tuple(([0] if k.batch_axis in axes else [])
                        + [1 + spatial.index(i) for i in axes if i in spatial])
    n_sp, ds, db = k.n_spatial, k.diagonal_spatial, k.diagonal_batch

    def normalizer(cov, mask):
      var = kernel_ops.variances(cov, db, ds, n_sp)
      if not kernel_axes:
        return eps + var
      if mask is None:
        return eps + jnp.mean(var, kernel_axes, keepdims=True)
      keep = ~_positions(mask, k)
      count = jnp.maximum(jnp.sum(keep, kernel_axes, keepdims=True), 1)
      total = jnp.sum(jnp.where(keep, var, jnp.zeros((), var.dtype)),
                      kernel_axes, keepdims=True)
      return eps + total / count

    s1 = normalizer(k.cov1, k.mask1)
    s2 = s1 if k.cov2 is None else normalizer(k.cov2, k.mask2)
    a, b = kernel_ops.pair(s1, s2, ds, one_batch_axis=False)
    root12 = jnp.sqrt(a * b)

    def own(cov, s):
      if cov is None:
        return None
      sa, sb = kernel_ops.pair(s, s, ds, one_batch_axis=db)
      return cov / jnp.sqrt(sa * sb)

    ntk = k.ntk
    if ntk is not None and ntk.ndim:  # a 0-d NTK is a still-zero one
      ntk = ntk / root12
    return k.replace(nngp=k.nngp / root12, ntk=ntk, cov1=own(k.cov1, s1),
                     cov2=own(k.cov2, s2))

  return make_layer("LayerNorm", init_fn, apply_fn, rule,
                    Requirements(gaussian_input=True, batch_axis=batch_axis,
                                 channel_axis=channel_axis))


def _positions(mask, k) -> Optional[jnp.ndarray]:
  """`(n, <spatial>)`: a position is masked if all its channels are; spatial
  axes in the kernel's order (reversed when `k.is_reversed`)."""
  mask = jnp.all(mask, axis=k.channel_axis, keepdims=True)
  mask = jnp.moveaxis(mask, (k.batch_axis, k.channel_axis), (0, -1))[..., 0]
  if k.is_reversed and mask.ndim > 2:
    mask = jnp.moveaxis(mask, tuple(range(1, mask.ndim)),
                        tuple(range(mask.ndim - 1, 0, -1)))
  return mask
