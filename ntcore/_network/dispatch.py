"""Which compiled program runs a call of a network's `kernel_fn`.

A network's own `jax.jit` program (`call._jitted`) bakes its
hyper-parameters in as constants: a sweep over 50 networks would compile
50 programs, about 0.5-1 s each on a CPU, where the kernels of small
networks take milliseconds. So by default a call made outside any
transformation (no `jax.jit`, `vmap`, `grad` of the user around it) whose
input NNGP holds fewer than `SMALL_CALL_ENTRIES` entries (`n1 * n2 *
spatial pairs`, summed over a multi-input network's inputs) runs the
program shared by every network of its **structure**
(`shared_programs.py`): the same layers in the same order, the same input
shapes and dtypes and the same `get`, whatever `W_std`, `b_std` or a
nonlinearity's parameters are. A network traces (runs its rules in Python)
once per signature, as under `jit`; later calls with that signature run the
program directly. A call inside the user's own transformation is traced
into the user's program. `NTCORE_SHARE_PROGRAMS=0` in the environment turns
sharing off: every call then runs the network's own program.

Larger calls run the network's own program: there its constants pay off
(a 10-layer FC NNGP+NTK of N = 2000 points ran 0.55 s with them baked in
against 0.83 s shared, medians of 5 on a 2-core CPU), while compiling is
a smaller part of the call. `SMALL_CALL_ENTRIES = 10**6` is N = 1000 for a
fully-connected network, where the call takes about 0.1 s and compiling
0.5-1 s.

The two programs run the same operations; the shared one reads the
hyper-parameters at run time, so XLA fuses it a little differently and the
two agree to floating-point round-off (measured: 4e-15 absolute on values
of about 10 in float64, a 13-layer ReLU network), not bit for bit:
`jax.jit(kernel_fn)(x)` and a small `kernel_fn(x)` differ in the last bits.
Each path on its own is deterministic.
"""

from __future__ import annotations

import math
import os

import jax

from ntcore._network import shared_programs

SHARE_PROGRAMS_ENV = "NTCORE_SHARE_PROGRAMS"
SMALL_CALL_ENTRIES = 10 ** 6

# Signatures remembered per network; past this many a network runs its own
# program (a loop over ever-new shapes should not grow this without bound).
_MAX_SIGNATURES = 256


def shares_programs() -> bool:
  """Whether calls outside a transformation run programs shared by structure."""
  return os.environ.get(SHARE_PROGRAMS_ENV, "1").strip() != "0"


def is_traced(tree) -> bool:
  """Whether any leaf of `tree` is a tracer (a transformation is running)."""
  return any(isinstance(leaf, jax.core.Tracer)
             for leaf in jax.tree_util.tree_leaves(tree))


def input_entries(x1, x2, batch_axis: int, channel_axis: int,
                  diagonal_spatial: bool) -> int:
  """Entries of the input NNGP: `n1 * n2 * spatial pairs`, summed over inputs.

  `spatial pairs` is `S^2` for full spatial covariances and `S` for diagonal
  ones, `S` being the number of spatial positions of an example.
  """
  if isinstance(x1, (list, tuple)):
    x2 = [None] * len(x1) if x2 is None else x2
    return sum(input_entries(a, b, batch_axis, channel_axis, diagonal_spatial)
               for a, b in zip(x1, x2))
  ndim = x1.ndim
  skip = {batch_axis % ndim, channel_axis % ndim}
  spatial = math.prod(d for i, d in enumerate(x1.shape) if i not in skip)
  n1 = x1.shape[batch_axis % ndim]
  n2 = n1 if x2 is None else x2.shape[batch_axis % x2.ndim]
  return n1 * n2 * (spatial if diagonal_spatial else spatial ** 2)


def signature(x1, x2, dynamic, names, static: dict, static_kwargs) -> tuple:
  """What a network's program is keyed by: shapes, dtypes, static options."""
  leaves, treedef = jax.tree_util.tree_flatten((x1, x2, dynamic))
  shapes = tuple((tuple(leaf.shape), str(leaf.dtype)) if hasattr(leaf, "shape")
                 else (type(leaf).__name__, leaf) for leaf in leaves)
  return (treedef, shapes, names, tuple(sorted(static.items())),
          static_kwargs)


def shared_call(net, fn, args: tuple, key: tuple, jitted):
  """`fn(*args)` through the program shared by the structure of `net`.

  The first call of `net` with signature `key` traces `fn` once and binds
  the trace to its structure's program (`shared_programs.Call`); later
  calls with that signature run the program directly. `jitted` (the
  network's own program) runs the call when the signature is unhashable,
  `net` already holds `_MAX_SIGNATURES` of them, or the network captures
  values an outer transformation traces (then its trace is not reusable).
  """
  cache = net.__dict__.setdefault("_shared_calls", {})
  try:
    call = cache.get(key)
  except TypeError:  # an unhashable part of the signature
    return jitted(*args)
  if call is None:
    if len(cache) >= _MAX_SIGNATURES:
      return jitted(*args)
    call = shared_programs.Call(fn, args)
    if call.captures_tracers:
      return jitted(*args)
    cache[key] = call
  return call(args)
