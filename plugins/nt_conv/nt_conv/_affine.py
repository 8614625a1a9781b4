"""The NNGP/NTK update of an affine layer with a linear spatial operator.

A convolution `z = W_std / sqrt(C |f|) sum_d W_d x(. + d) + b_std b` (NTK
parameterization) has, for a linear operator `A` on covariances (the mean
over filter taps, see `_windows`),

    nngp' = W_std^2 A(nngp) + b_std^2
    ntk'  = W_std^2 A(ntk) + nngp'          (= W_std^2 A(ntk + nngp) + b_std^2)

and in the standard parameterization `ntk' = (C |f| / s[0]) A(nngp) +
W_std^2 A(ntk) + [b]` (`[b]` = 1 with a bias), as NT's Table 1 `Conv` row
and its standard-parameterization Dense analogue.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import jax
from jax import random

from ntcore import Kernel

# A(m, batch_ndim) -> mean over taps; shift(m, value, batch_ndim) -> m + value
# where the bias acts.
LinearOp = Callable[..., object]


def canonical_parameterization(parameterization: str, layer: str) -> str:
  p = str(parameterization).lower()
  if p not in ("ntk", "standard"):
    raise ValueError(f"{layer}(parameterization={parameterization!r}): use "
                     f"'ntk' or 'standard'.")
  return p


def _add(m, value, batch_ndim):
  del batch_ndim
  return m + value


def affine(k: Kernel, op: LinearOp, *, W_std: float, b_std: Optional[float],
           parameterization: str, s: tuple[int, int], fan_in: float,
           shift: LinearOp = _add) -> dict:
  """New `nngp`, `ntk`, `cov1`, `cov2` of `k` after the affine layer.

  `op(m, batch_ndim)` applies the layer's spatial operator to an array with
  `batch_ndim` leading batch axes; `shift(m, value, batch_ndim)` adds the
  bias variance where the bias acts (everywhere for shared weights).
  """
  w_var = W_std ** 2
  b_var = None if b_std is None else b_std ** 2
  cov_batch = 1 if k.diagonal_batch else 2

  def with_bias(m, batch_ndim, value):
    return m if value is None else shift(m, value, batch_ndim)

  def cov(m, batch_ndim):
    if m is None:
      return None
    return with_bias(w_var * op(m, batch_ndim), batch_ndim, b_var)

  ntk = k.ntk
  zero_ntk = ntk is not None and ntk.ndim == 0  # the inputs' NTK: exactly 0
  if parameterization == "ntk":
    nngp = cov(k.nngp, 2)
    if ntk is not None:
      ntk = nngp if zero_ntk else cov(ntk + k.nngp, 2)
  else:
    unscaled = op(k.nngp, 2)
    nngp = with_bias(w_var * unscaled, 2, b_var)
    if ntk is not None:
      ntk = fan_in / s[0] * unscaled
      if not zero_ntk:
        ntk = ntk + w_var * op(k.ntk, 2)
      ntk = with_bias(ntk, 2, None if b_std is None else 1.)
  return dict(nngp=nngp, ntk=ntk, cov1=cov(k.cov1, cov_batch),
              cov2=cov(k.cov2, cov_batch))


@functools.partial(jax.jit, static_argnames=("w_shape", "b_shape"))
def sample_params(key, w_shape, b_shape, w_scale=1., b_scale=1.):
  """`(W, b)`: standard normal weights (and bias, unless `b_shape` is None),
  times `w_scale`, `b_scale` (the standard parameterization's factors).

  One compiled function per shape, shared by all layers: eagerly, the split,
  two draws and two products would each compile separately for every layer
  shape (NT's `init_fn`s build WideResNets several times faster that way).
  """
  k1, k2 = random.split(key)
  W = random.normal(k1, w_shape) * w_scale
  b = None if b_shape is None else random.normal(k2, b_shape) * b_scale
  return W, b
