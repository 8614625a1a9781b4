"""The user-facing `kernel_fn(x1, x2=None, get=None, **kwargs)` of a network.

Everything a call decides before the rules run is here, in order:

1. **Inputs.** `x1`, `x2` are validated and cast (`inputs.py`); an `x2`
   equal to `x1` is treated as `None` (also under `jit`, on device).
2. **Blocks** (NT paper section 3.1). The network is asked, last layer
   first, what its input must carry along the batch and the spatial axes
   (`KernelFn.input_need`, a `requirements.Need`), starting from what the
   output must carry; the input kernel is built with exactly those blocks.
3. **jit.** Array keywords are traced, the others are static; the whole
   network runs as one `jax.jit` program (for small calls outside the
   user's transformations, one shared by all networks of the same
   structure: `dispatch.py`).
4. **Selection.** `get` names the fields to return; arrays are selected
   inside `jit` so unused ones are never computed (the NTK only when asked).
"""

from __future__ import annotations

import collections
import functools
from typing import Optional, Sequence

import jax
import numpy as np

from ntcore import _finite
from ntcore._network import dispatch, inputs
from ntcore.errors import KernelRequirementError
from ntcore.kernel import GET_FIELDS, Kernel
from ntcore.requirements import Need

_ARRAY_FIELDS = frozenset({"nngp", "ntk", "cov1", "cov2", "mask1", "mask2"})
_STATIC = ("names", "diagonal_batch", "diagonal_spatial", "batch_axis",
           "channel_axis", "mask_constant", "x2_is_none", "static_kwargs",
           "compute_ntk")


# --- 1. the call -------------------------------------------------------------
def kernel_fn_call(self, x1_or_kernel, x2=None, get=None, **kwargs):
  """Computes the kernel of the network's outputs.

  Args:
    x1_or_kernel: inputs `x1` of shape `(n1, ...)`, a list of them for a
      network that starts with `parallel`, or a `Kernel` (or a list of
      them) to transform.
    x2: inputs `(n2, ...)` (a list for a `parallel` network), or None for
      the kernel of `x1` with itself. An `x2` that is `x1`, or equal to it
      within 1e-12, is treated as None (also under `jit`, where the check
      runs on device), so same-example entries are computed exactly and
      `kernel_fn(x, x)`, `kernel_fn(x, x.copy())` and `kernel_fn(x)` agree;
      `cov2` is then `cov1`.
    get: None (return the `Kernel`), a field name (`"nngp"`, `"ntk"`,
      `"cov1"`, `"is_gaussian"`, `"shape1"`, ...) or a tuple of names (an
      `AnalyticKernel` namedtuple in that order). The NTK is computed only
      when asked for. A network ending in `parallel` returns a list with
      one such result per branch.
    **kwargs: `diagonal_batch`, `diagonal_spatial` (which blocks of the
      output to keep), `mask_constant` (input entries equal to it are
      masked), and any keyword a layer's rule consumes.

  Returns:
    What `get` names: arrays `(n1, n2, <spatial>)`, a namedtuple of them,
    or a `Kernel` (a list of these for a network ending in `parallel`).
  """
  if _is_kernel(x1_or_kernel):
    _check_blocks(self, x1_or_kernel)
    return _output(self.apply(x1_or_kernel, **kwargs), _canonical_get(get))
  get_form = _canonical_get(get)
  batch_axis, channel_axis = self.input_axes()
  batch_axis = 0 if batch_axis is None else batch_axis
  channel_axis = -1 if channel_axis is None else channel_axis
  if isinstance(x2, (list, tuple)) and all(x is None for x in x2):
    x2 = None  # NT's `(None, None)` for a two-input network
  x1 = inputs.canonical_inputs(x1_or_kernel, "x1")
  same = inputs.same_inputs(x1_or_kernel, x2)
  x2 = None if x2 is None else inputs.canonical_inputs(x2, "x2")
  if self.reads_flat_input():
    # Flatten's kernel is that of the flattened examples, so (as NT's
    # batch allows) x1 (n, 784) and x2 (m, 28, 28, 1) may meet.
    x1, x2 = inputs.flatten_if_shapes_differ(x1, x2, batch_axis)
  inputs.check_pairs(x1, x2, batch_axis)
  diagonal_batch = _diagonal(self, "batch",
                             kwargs.pop("diagonal_batch", None))
  diagonal_spatial = _diagonal(self, "spatial",
                               kwargs.pop("diagonal_spatial", None))
  names = get_form[1]
  inside = names if names is not None and set(names) <= _ARRAY_FIELDS else None
  static = dict(diagonal_batch=diagonal_batch,
                diagonal_spatial=diagonal_spatial, batch_axis=batch_axis,
                channel_axis=channel_axis,
                mask_constant=kwargs.pop("mask_constant", None),
                compute_ntk=names is None or "ntk" in names)
  dynamic, static_kwargs = _split_kwargs(kwargs)
  try:
    hash(static_kwargs)
    hashable = True
  except TypeError:  # an unhashable static keyword: run without jit
    hashable = False
  shared = (dispatch.shares_programs()
            and not dispatch.is_traced((x1, x2, dynamic))
            and dispatch.input_entries(x1, x2, batch_axis, channel_axis,
                                       diagonal_spatial)
            < dispatch.SMALL_CALL_ENTRIES)

  def run(a, b, names_in):
    options = dict(names=names_in, x2_is_none=b is None,
                   static_kwargs=static_kwargs, **static)
    if not hashable:
      return _forward(self, a, b, dynamic, **options)
    jitted = functools.partial(_jitted(self), **options)
    if not shared:
      return jitted(a, b, dynamic)
    def shared_call(a, b):
      key = dispatch.signature(a, b, dynamic, names_in, static,
                               static_kwargs)
      return dispatch.shared_call(
          self, functools.partial(_forward, self, **options),
          (a, b, dynamic), key, jitted)

    if not _bucketed(a, b, names_in, dynamic, static):
      return shared_call(a, b)
    axis = batch_axis
    n1 = a.shape[axis]
    n2 = n1 if b is None else b.shape[axis]
    p1, p2 = dispatch.bucket(n1), dispatch.bucket(n2)
    padded = shared_call(dispatch.pad_batch(a, p1, axis),
                         None if b is None else dispatch.pad_batch(b, p2, axis))
    out = dispatch.unpad(padded, n1, n2, p1, p2)
    # A result whose arrays do not lead with the two batch axes (a layer
    # that changes them) is computed again at the given sizes.
    return shared_call(a, b) if out is None else out

  if x2 is None or same is True:
    out = run(x1, None, _same_names(inside))
    if x2 is not None:
      out = _as_given_twice(out, inside, keep_flag=True)
  elif same is None:  # traced inputs of equal shapes: decide on device
    def given_twice(a, b):
      # The value of `x` with itself; the derivatives of the pair (x1, x2),
      # which must see a perturbation of x2 that x1 does not get.
      pair = run(a, b, inside)
      exact = _as_given_twice(run(a, None, _same_names(inside)), inside,
                              keep_flag=False)
      return jax.tree_util.tree_map(
          lambda p, e: p + jax.lax.stop_gradient(e - p), pair, exact)

    out = jax.lax.cond(inputs.traced_same(x1, x2), given_twice,
                       lambda a, b: run(a, b, inside), x1, x2)
  else:
    out = run(x1, x2, inside)
  out = (_shape_output(out, get_form) if inside is not None
         else _output(out, get_form))
  if not isinstance(out, list):
    _finite.warn_if_not_finite(out, x1_or_kernel, x2)
  return out


def _bucketed(x1, x2, names, dynamic, static) -> bool:
  """Whether a small call pads its batch to `dispatch.bucket` sizes."""
  if names is None or not set(names) <= dispatch.BUCKETED_FIELDS:
    return False
  if dynamic or static["mask_constant"] is not None:
    return False
  if isinstance(x1, (list, tuple)) or isinstance(x2, (list, tuple)):
    return False
  axis = static["batch_axis"]
  return any(x is not None and dispatch.bucket(x.shape[axis]) != x.shape[axis]
             for x in (x1, x2))


# --- 2. blocks ---------------------------------------------------------------
def _diagonal(net, axis: str, asked: Optional[bool]) -> bool:
  """Which blocks the input kernel carries along `axis` (True: diagonal)."""
  if asked is None:
    # As in NT: by default the output keeps per-example variances only (cov1
    # diagonal in the batch) and full spatial covariances, except where a
    # layer (ConvLocal) makes the off-diagonal spatial blocks zero.
    output_need = (Need.DIAGONAL if axis == "batch"
                   else Need.FULL_UNLESS_ZERO)
  else:
    output_need = Need.of(not asked)
  input_need = net.input_need(axis, output_need)
  if asked and not input_need.is_diagonal:
    raise KernelRequirementError(
        f"diagonal_{axis}=True was asked for, but a layer of this network "
        f"needs the off-diagonal {axis} covariances. Leave diagonal_{axis} "
        f"unset to let ntcore choose.")
  return input_need.is_diagonal


def _check_blocks(net, k) -> None:
  """A given input kernel must carry the blocks this network reads."""
  kernels = []
  _map_kernels(kernels.append, k)
  for ki in kernels:
    for axis, output_need in (("batch", Need.DIAGONAL),
                              ("spatial", Need.FULL_UNLESS_ZERO)):
      if (getattr(ki, f"diagonal_{axis}")
          and net.input_need(axis, output_need) is Need.FULL):
        raise KernelRequirementError(
            f"{net.name} reads off-diagonal {axis} covariances, but the "
            f"input kernel has diagonal_{axis}=True and does not hold "
            f"them. Recompute the input kernel with "
            f"diagonal_{axis}=False.")


# --- 3. jit ------------------------------------------------------------------
def _jitted(net):
  """The network's forward pass under `jax.jit`, built once per network."""
  fn = net.__dict__.get("_jitted_forward")
  if fn is None:
    fn = jax.jit(functools.partial(_forward, net), static_argnames=_STATIC)
    net.__dict__["_jitted_forward"] = fn
  return fn


def _forward(net, x1, x2, dynamic, *, names, diagonal_batch, diagonal_spatial,
             batch_axis, channel_axis, mask_constant, x2_is_none,
             static_kwargs, compute_ntk):
  del x2_is_none  # part of the jit cache key only
  k = inputs.inputs_to_kernels(
      x1, x2, diagonal_batch=diagonal_batch,
      diagonal_spatial=diagonal_spatial, compute_ntk=compute_ntk,
      batch_axis=batch_axis, channel_axis=channel_axis,
      mask_constant=mask_constant)
  k = net.apply(k, **dict(static_kwargs), **dynamic)
  return k if names is None else _map_kernels(lambda ki: _select(ki, names),
                                              k)


# --- 4. selection ------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _get_tuple(names: tuple[str, ...]):
  """One namedtuple class per `get`, named as NT names it, so results of two
  calls are the same pytree type (`jax.tree_util.tree_map` over both works)."""
  return collections.namedtuple("AnalyticKernel", names)


def _same_names(names):
  """The fields to compute when `x2` is `x1`: `cov2` is then `cov1`."""
  if names is None:
    return None
  return tuple("cov1" if n == "cov2" else "mask1" if n == "mask2" else n
               for n in names)


def _as_given_twice(out, names, keep_flag: bool):
  """The `x2=None` result as the result for `x2` equal to `x1`.

  `cov2 = cov1` and `mask2 = mask1`. `keep_flag`: keep `x1_is_x2=True`
  (decided before tracing); otherwise the flag is cleared so both branches
  of an on-device decision have one structure.
  """
  if isinstance(out, list):
    return [_as_given_twice(o, names, keep_flag) for o in out]
  if names is None:
    return out.replace(cov2=out.cov1, mask2=out.mask1,
                       x1_is_x2=out.x1_is_x2 if keep_flag else False)
  return out


def _shape_output(out, get_form):
  """Arrays selected inside jit, in the form `get` asks for."""
  _, names, single = get_form
  if isinstance(out, list):
    return [_shape_output(o, get_form) for o in out]
  if single:
    return out[0]
  return _get_tuple(tuple(names))(*out)


def _output(out, get_form):
  """`get`'s fields of a Kernel (or list of Kernels), selected outside jit."""
  _, names, single = get_form
  if names is None:
    return out
  if isinstance(out, (list, tuple)):
    return [_output(o, get_form) for o in out]
  values = _select(out, names)
  return values[0] if single else _get_tuple(tuple(names))(*values)


def _map_kernels(fn, k):
  """`fn` of every `Kernel` in a (nested) list of them."""
  if isinstance(k, (list, tuple)):
    return [_map_kernels(fn, ki) for ki in k]
  return fn(k)


def _is_kernel(x) -> bool:
  if isinstance(x, (list, tuple)):
    return len(x) > 0 and all(_is_kernel(xi) for xi in x)
  return isinstance(x, Kernel)


def _canonical_get(get):
  """Returns `(get, names, single)`; `names` is None for the whole Kernel."""
  if get is None:
    return None, None, False
  if isinstance(get, str):
    names = (get,)
    single = True
  else:
    names = tuple(get)
    single = False
  for n in names:
    if n not in GET_FIELDS:
      raise ValueError(f"get={get!r}: {n!r} is not a kernel field; use one "
                       f"of {', '.join(GET_FIELDS)} (or a tuple of them).")
  return get, names, single


def _select(k: Kernel, names: Sequence[str]):
  return tuple(getattr(k, n) for n in names)


def _is_array(x) -> bool:
  return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _split_kwargs(kwargs):
  """Splits keywords into array leaves (traced) and the rest (static)."""
  dynamic, static = {}, []
  for key, value in kwargs.items():
    leaves = jax.tree_util.tree_leaves(value)
    if leaves and all(_is_array(v) for v in leaves):
      dynamic[key] = value
    else:
      static.append((key, value))
  return dynamic, tuple(sorted(static, key=lambda kv: kv[0]))
