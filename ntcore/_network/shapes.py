"""Shape inference: a layer's output shape, found by tracing its `init_fn`."""

from __future__ import annotations

import functools

import jax


@functools.lru_cache(maxsize=4096)
def _out_shape_cached(init_fn, in_shape):
  box = []

  def f(key):
    shape, params = init_fn(key, _unfreeze(in_shape))
    box.append(shape)
    return params

  try:
    jax.eval_shape(f, jax.random.PRNGKey(0))
  except NotImplementedError:
    # A layer with no finite network (NT's kernel-only layers) keeps the
    # shape of its input.
    return _freeze(_unfreeze(in_shape))
  return _freeze(box[0])


def out_shape(init_fn, in_shape):
  """Output shape of a layer for `in_shape` (a tuple, or a list of them
  between FanOut and FanIn), found by tracing `init_fn` (no arrays made)."""
  return _unfreeze(_out_shape_cached(init_fn, _freeze(in_shape)))


def _freeze(shape):
  if isinstance(shape, list):
    return ("__list__",) + tuple(_freeze(s) for s in shape)
  return tuple(int(s) for s in shape)


def _unfreeze(shape):
  if shape and shape[0] == "__list__":
    return [_unfreeze(s) for s in shape[1:]]
  return tuple(shape)
