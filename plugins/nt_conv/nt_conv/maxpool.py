"""`MaxPool`: max pooling, a finite network only (no closed-form kernel)."""

from __future__ import annotations

from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax

from ntcore import Requirements, make_layer

from nt_conv import _padding


NO_KERNEL = (
    "MaxPool has no infinite-width kernel: the maximum of correlated "
    "Gaussians has no closed-form covariance. Estimate the kernel of the "
    "finite network instead:\n"
    "  nt.monte_carlo_kernel_fn(init_fn, apply_fn, key, n_samples)\n"
    "(from the nt-montecarlo plugin), or use AvgPool for an analytic kernel.")


def MaxPool(window_shape: Sequence[int],
            strides: Optional[Sequence[int]] = None, padding: str = "VALID",
            batch_axis: int = 0, channel_axis: int = -1):
  """Max pooling over windows of the spatial axes (finite network only).

  Args:
    window_shape: window size along each spatial axis.
    strides: window strides; None means 1 along every axis.
    padding: "VALID", "SAME" (pads with -inf, so padding never wins) or
      "CIRCULAR" (periodic: pads by wrapping the image around).
    batch_axis: batch axis of the inputs.
    channel_axis: channel axis of the inputs.

  Kernel: none. `E[max_i u_i max_j v_j]` for correlated Gaussian windows
  has no closed form, so `kernel_fn` raises; `nt.monte_carlo_kernel_fn`
  estimates the kernel of the finite network, whose `init_fn`/`apply_fn`
  work as usual. Registered with `kernel="finite-only"`.

  Raises:
    ValueError: for an unknown `padding`, or window/stride lengths that do
      not match the number of spatial axes.
    NotImplementedError: from `kernel_fn`, always.
  """
  window_shape = tuple(int(w) for w in window_shape)
  strides = tuple(int(s) for s in (strides or (1,) * len(window_shape)))
  padding = _padding.canonical_padding(padding, "MaxPool")
  if len(strides) != len(window_shape):
    raise ValueError(f"MaxPool: strides {strides} and window_shape "
                     f"{window_shape} must have the same length.")

  def dims(ndim):
    """Full window, strides and the spatial axes for `ndim`-d activations."""
    b, c = batch_axis % ndim, channel_axis % ndim
    spatial = [a for a in range(ndim) if a not in (b, c)]
    if len(spatial) != len(window_shape):
      raise ValueError(
          f"MaxPool(window_shape={window_shape}) pools {len(window_shape)} "
          f"spatial axes, but its {ndim}-d input has {len(spatial)}. Give one "
          f"window size per spatial axis.")
    window, stride = [1] * ndim, [1] * ndim
    for a, w, s in zip(spatial, window_shape, strides):
      window[a], stride[a] = w, s
    return tuple(window), tuple(stride), spatial

  def pool(x):
    window, stride, spatial = dims(x.ndim)
    pad = padding
    if padding == "CIRCULAR":
      pads = lax.padtype_to_pads([x.shape[a] for a in spatial], window_shape,
                                 strides, "SAME")
      widths = [(0, 0)] * x.ndim
      for a, p in zip(spatial, pads):
        widths[a] = p
      x = jnp.pad(x, widths, mode="wrap")
      pad = "VALID"
    # A NumPy (concrete) -inf lets JAX see the max monoid and differentiate.
    return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, window,
                             stride, pad)

  def init_fn(key, input_shape):
    del key
    window, stride, _ = dims(len(input_shape))
    pad = "SAME" if padding == "CIRCULAR" else padding
    pads = lax.padtype_to_pads(tuple(input_shape), window, stride, pad)
    out = tuple((n + lo + hi - w) // s + 1 for n, (lo, hi), w, s in
                zip(input_shape, pads, window, stride))
    return out, ()

  def apply_fn(params, x, **kwargs):
    del params, kwargs
    return pool(x)

  def rule(k, **kwargs):
    """MaxPool: no closed-form kernel; raises (use monte_carlo_kernel_fn)."""
    del k, kwargs
    raise NotImplementedError(NO_KERNEL)

  return make_layer("MaxPool", init_fn, apply_fn, rule,
                    Requirements(batch_axis=batch_axis,
                                 channel_axis=channel_axis))
