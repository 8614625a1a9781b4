"""Arguments of empirical kernels: `apply_fn` keywords and `vmap_axes`.

Keyword arguments of `f` are split into one set for `x1` and one for `x2`
the way Neural Tangents does (`utils.split_kwargs`):

* `rng`: the same key for both when `x2` is None or equal to `x1` (so a
  stochastic `f`, e.g. with dropout, is evaluated identically on identical
  inputs), else `fold_in(rng, 1)` for `x2`. A pair `(key1, key2)` is used as
  given, except that `key2` becomes `key1` when `x1 == x2` and
  `fold_in(key2, 1)` when the two keys are equal but the inputs are not.
* any other pair (a tuple of length 2): first item for `x1`, second for `x2`;
* anything else: passed to both.

Equality of `x1` and `x2` is a value comparison, so it is made with
`jnp.where`, never with a Python `if`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax import random

from nt_montecarlo import _axes

PyTree = Any


def is_none(x: PyTree) -> bool:
  """True for `None` and for trees with no array (NT's `x2=None`)."""
  return not jax.tree_util.tree_leaves(x)


def _same_inputs(x1: PyTree, x2: PyTree):
  """Traced bool: `x1` and `x2` have equal shapes and (near-)equal values."""
  l1, l2 = jax.tree_util.tree_leaves(x1), jax.tree_util.tree_leaves(x2)
  if (jax.tree_util.tree_structure(x1) != jax.tree_util.tree_structure(x2)
      or any(jnp.shape(a) != jnp.shape(b) for a, b in zip(l1, l2))):
    return jnp.asarray(False)
  same = [jnp.all(_key_bits(a) == _key_bits(b)) if _is_key(a)
          else jnp.all(jnp.abs(a - b) < 1e-12) for a, b in zip(l1, l2)]
  return jnp.all(jnp.stack(same)) if same else jnp.asarray(True)


def _is_key(x) -> bool:
  return jax.dtypes.issubdtype(jnp.asarray(x).dtype, jax.dtypes.prng_key)


def _key_bits(key):
  return random.key_data(key) if _is_key(key) else key


def _select_key(pred, key_true, key_false):
  """`jnp.where` for raw (`PRNGKey`) and typed (`jax.random.key`) keys."""
  if _is_key(key_true):
    bits = jnp.where(pred, random.key_data(key_true),
                     random.key_data(key_false))
    return random.wrap_key_data(bits, impl=random.key_impl(key_true))
  return jnp.where(pred, key_true, key_false)


def _split_rng(rng, x1, x2):
  if isinstance(rng, tuple) and len(rng) == 2:
    key1, key2 = rng
    key2 = _select_key(_same_inputs(key1, key2), random.fold_in(key2, 1),
                       key2)
  else:
    key1, key2 = rng, random.fold_in(rng, 1)
  return key1, _select_key(_same_inputs(x1, x2), key1, key2)


def split_kwargs(kwargs: dict, x1: PyTree, x2: Optional[PyTree]
                 ) -> tuple[dict, dict]:
  """`apply_fn` keywords for `x1` and for `x2` (see the module docstring)."""
  kwargs1, kwargs2 = {}, {}
  for k, v in kwargs.items():
    if k == "rng" and v is not None and not is_none(x2):
      kwargs1[k], kwargs2[k] = _split_rng(v, x1, x2)
    elif isinstance(v, tuple) and len(v) == 2:
      kwargs1[k], kwargs2[k] = v
    else:
      kwargs1[k] = kwargs2[k] = v
  return kwargs1, kwargs2


def _same_sequence_type(axes, tree):
  """`axes` with its tuples/lists of the type of `tree`'s at the same place:
  NT programs write `vmap_axes=(0, 0)` for inputs or outputs that are lists
  (a `parallel` network returns a list)."""
  if (isinstance(axes, (list, tuple)) and isinstance(tree, (list, tuple))
      and not hasattr(tree, "_fields") and len(axes) == len(tree)):
    return type(tree)(_same_sequence_type(a, t) for a, t in zip(axes, tree))
  return axes


def _tree_axes(axes, tree: PyTree, name: str = "vmap_axes") -> PyTree:
  """An int broadcast over `tree`'s leaves; negative axes made non-negative.

  Raises:
    ShapeError: an axis out of range for its leaf (`_axes.vmap_axis`).
  """
  if axes is None:
    return None
  if isinstance(axes, int):
    axes = jax.tree_util.tree_map(lambda _: axes, tree)
  axes = _same_sequence_type(axes, tree)
  return jax.tree_util.tree_map(
      lambda a, x: _axes.vmap_axis(a, len(jnp.shape(x)), name), axes, tree)


@dataclasses.dataclass
class Prepared:
  """What every NTK implementation needs, computed once per call.

  Attributes:
    kwargs1, kwargs2: `f`'s keywords for `x1` and `x2`.
    fx1, fx2: shapes of `f(params, x1)`, `f(params, x2)` (`ShapeDtypeStruct`
      trees; `fx2 is fx1` when `x2` is None).
    x_axis, fx_axis: per-leaf batch axes of inputs and outputs (None: no
      `vmap`).
    kw_axes: batch axes of the keywords in `vmap_axes`' third entry.
  """

  kwargs1: dict
  kwargs2: dict
  fx1: PyTree
  fx2: PyTree
  x_axis: PyTree
  fx_axis: PyTree
  kw_axes: dict

  @property
  def vmapped(self) -> bool:
    return self.x_axis is not None or bool(self.kw_axes)

  def kw_in_axes(self, kwargs: dict) -> dict:
    return {k: self.kw_axes.get(k) for k in kwargs}


def prepare(f: Callable, apply_fn_kwargs: dict, params: PyTree, vmap_axes,
            x1: PyTree, x2: Optional[PyTree]) -> Prepared:
  """Splits keywords, finds output shapes and canonicalizes `vmap_axes`.

  `vmap_axes` is `(in_axes, out_axes, kwargs_axes)` or a single value used
  for both `in_axes` and `out_axes` (NT's convention).
  """
  kwargs1, kwargs2 = split_kwargs(apply_fn_kwargs, x1, x2)
  fx1 = jax.eval_shape(lambda p, x, kw: f(p, x, **kw), params, x1, kwargs1)
  fx2 = fx1 if is_none(x2) else jax.eval_shape(
      lambda p, x, kw: f(p, x, **kw), params, x2, kwargs2)
  if isinstance(vmap_axes, tuple) and len(vmap_axes) == 3:
    x_axis, fx_axis, kw_axes = vmap_axes
  else:
    x_axis, fx_axis, kw_axes = vmap_axes, vmap_axes, {}
  if isinstance(kw_axes, int):
    kw_axes = {k: kw_axes for k in kwargs1}
  kw_axes = {k: _tree_axes(a, kwargs1[k], f"vmap_axes kwargs_axes[{k!r}]")
             for k, a in (kw_axes or {}).items() if a is not None}
  x_axis = _tree_axes(x_axis, x1, "vmap_axes in_axes (of x1)")
  fx_axis = _tree_axes(fx_axis, fx1, "vmap_axes out_axes (of f(x1))")
  _axes.check_batch_sizes(
      [("x1", x1, x_axis), ("f(x1)", fx1, fx_axis)]
      + [(f"keyword {k!r}", kwargs1[k], a) for k, a in kw_axes.items()])
  return Prepared(kwargs1, kwargs2, fx1, fx2, x_axis, fx_axis, kw_axes)


def _expand(x: PyTree, axes: PyTree) -> PyTree:
  if axes is None:
    return x
  return jax.tree_util.tree_map(jnp.expand_dims, x, axes)


def f_of_params(f: Callable, x: PyTree, kwargs: dict,
                prep: Prepared) -> Callable[[PyTree], PyTree]:
  """`params -> f(params, x, **kwargs)`.

  Under `vmap` (`prep.vmapped`), `x` and the batched keywords are single
  examples: a batch axis of size 1 is put back before calling `f` and taken
  off its output, so `f` always sees batched inputs.
  """
  if prep.vmapped:
    x = _expand(x, prep.x_axis)
    kwargs = {k: _expand(v, prep.kw_axes[k]) if k in prep.kw_axes else v
              for k, v in kwargs.items()}

  def fn(params):
    out = f(params, x, **kwargs)
    if prep.vmapped and prep.fx_axis is not None:
      out = jax.tree_util.tree_map(jnp.squeeze, out, prep.fx_axis)
    return out

  return fn
