"""Neural Tangents' custom-layer decorators: `layer`, `requires`, `supports_masking`.

A layer written NT's way is a function returning `(init_fn, apply_fn,
kernel_fn)` whose `kernel_fn(k: Kernel, **kwargs) -> Kernel` transforms the
input kernel::

    @stax.layer
    @stax.supports_masking(remask_kernel=False)
    def Square():
      init_fn = lambda key, shape: (shape, ())
      apply_fn = lambda params, x, **kw: x ** 2

      @stax.requires(diagonal_spatial=stax.Diagonal())
      def kernel_fn(k, **kw):
        ...                         # E[u^2 v^2] = q1 q2 + 2 c^2
        return k.replace(nngp=..., is_gaussian=False)

      return init_fn, apply_fn, kernel_fn

Each decorator turns the triple into the same `Layer` that plugins build
with `make_layer` (through `ntcore.layer.as_layer`), so an NT-style layer
works in `serial`, `parallel`, `nt.batch` and every `get` form.
"""

from __future__ import annotations

import functools
from typing import Callable

from ntcore.layer import NT_REQUIREMENTS, Layer, as_layer
from ntcore.masked import MaskedArray, unmask_fn

__all__ = ["MaskedArray", "layer", "requires", "supports_masking",
           "unmask_fn"]


def layer(layer_fn: Callable[..., tuple]) -> Callable[..., Layer]:
  """Makes a function returning a layer triple return an ntcore `Layer`.

  Its `kernel_fn` then takes raw inputs (`kernel_fn(x1, x2, get, **kw)`) as
  well as a `Kernel`, as every stax layer's does.
  """
  name = layer_fn.__name__

  @functools.wraps(layer_fn)
  def new_layer(*args, **kwargs) -> Layer:
    fns = layer_fn(*args, **kwargs)
    if isinstance(fns, Layer):
      return fns
    if len(fns) != 3:
      raise ValueError(f"{name} must return (init_fn, apply_fn, kernel_fn), "
                       f"got {len(fns)} functions. A fourth, mask_fn, is "
                       f"taken by stax.supports_masking (apply it under "
                       f"stax.layer).")
    return as_layer(*fns, name=name)

  return new_layer


def requires(**static_reqs):
  """States what an NT-style `kernel_fn` needs of its input kernel.

  Keywords as in NT: `diagonal_batch` and `diagonal_spatial` (a bool or a
  `stax.Diagonal`), `batch_axis`, `channel_axis`. The core checks them and
  chooses the covariance blocks to compute from them (NT paper section 3.1).
  """

  def decorate(kernel_fn):
    @functools.wraps(kernel_fn)
    def new_kernel_fn(k, **kwargs):
      return kernel_fn(k, **kwargs)

    setattr(new_kernel_fn, NT_REQUIREMENTS, dict(static_reqs))
    return new_kernel_fn

  return decorate


def supports_masking(remask_kernel: bool):
  """Makes a layer carry masks (`mask_constant=`) in `apply_fn` and `kernel_fn`.

  The decorated function may return a fourth function, `mask_fn(mask,
  input_shape) -> output_mask`; without it the mask passes unchanged. Its
  `apply_fn` receives `mask=` (True where masked) with masked inputs zeroed,
  and returns a `MaskedArray`. With `remask_kernel=True`, covariances of
  masked positions are zeroed after `kernel_fn`.
  """

  def decorate(layer_fn):
    name = layer_fn.__name__

    @functools.wraps(layer_fn)
    def layer_with_masking(*args, **kwargs) -> Layer:
      fns = layer_fn(*args, **kwargs)
      if len(fns) not in (3, 4):
        raise ValueError(f"{name} must return (init_fn, apply_fn, kernel_fn) "
                         f"or (..., mask_fn), got {len(fns)} functions.")
      mask_fn = fns[3] if len(fns) == 4 else None
      return as_layer(*fns[:3], mask_fn=mask_fn, remask=remask_kernel,
                      name=name)

    return layer_with_masking

  return decorate
