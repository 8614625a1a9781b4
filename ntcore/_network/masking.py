"""Masks through a network: the mask of each layer's output.

A mask has the shape of the finite activations (its channel axis may have
size 1). A masked position contributes nothing to any covariance, so a
layer that mixes channels (Dense) leaves exactly zero covariance there
(`Kernel.mask`, applied after rules with `Requirements(remask=True)`).
"""

from __future__ import annotations

from ntcore.errors import KernelRequirementError


def _has_mask(mask) -> bool:
  if isinstance(mask, (list, tuple)):
    return any(m is not None for m in mask)
  return mask is not None


def propagate(layer, mask, in_shape, out_shape):
  """The mask of a layer's output, from the mask (or list of masks) of its input."""
  if not _has_mask(mask):
    return None
  if layer.mask_fn is not None:
    return layer.mask_fn(mask, in_shape)
  if _same(in_shape, out_shape):
    return mask
  raise KernelRequirementError(
      f"{layer.name} changes the shape of its input ({in_shape} -> "
      f"{out_shape}) but does not support masked inputs. Drop "
      f"mask_constant, or mask only before layers that support masking.")


def _same(a, b) -> bool:
  if isinstance(a, list) or isinstance(b, list):
    return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b)))
  return tuple(a) == tuple(b)
