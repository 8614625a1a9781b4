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

**New input sizes.** A shared program is compiled per input shape too, so
a loop over training-set sizes would compile one per size. Small calls
that ask only for `nngp` and/or `ntk` (no array keywords, no
`mask_constant`) therefore pad the batch of `x1` and `x2` to a bucket
(`bucket`: sizes up to 8 as they are, then 8 sizes per octave, at most
12.5% more examples per axis) with copies of their first example, and
return the rows and columns of the real examples: any number of sizes
between 9 and 1024 compiles at most 56 programs. Each entry of a kernel
depends only on its own pair of examples (which is also what `nt.batch`
relies on), so the padding changes only round-off. The padded examples
cost up to 27% more entries, in calls that take milliseconds; the larger
calls that run the network's own program are not padded.

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
import numpy as np

from ntcore._network import shared_programs

SHARE_PROGRAMS_ENV = "NTCORE_SHARE_PROGRAMS"
SMALL_CALL_ENTRIES = 10 ** 6

# What a padded call may return: arrays with the two batch axes first.
BUCKETED_FIELDS = frozenset({"nngp", "ntk"})

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


def bucket(n: int) -> int:
  """The batch size a small call of `n` examples is padded to.

  `n` itself up to 8, then the next multiple of `2^(bit_length(n) - 4)`:
  8 sizes per octave (9, 10, ..., 16; 18, 20, ..., 32; ...), so the padding
  is less than `n / 8`.
  """
  if n <= 8:
    return n
  step = 1 << (n.bit_length() - 4)
  return -(-n // step) * step


def pad_batch(x, size: int, axis: int):
  """`x` with copies of its first example appended along `axis` up to `size`.

  On the host (numpy): a device op would compile once per new shape, which
  is what the padding avoids.
  """
  x = np.asarray(x)
  n = x.shape[axis]
  if n == size:
    return x
  first = np.take(x, [0], axis=axis)
  return np.concatenate([x, np.repeat(first, size - n, axis=axis)], axis=axis)


def unpad(out, n1: int, n2: int, p1: int, p2: int):
  """The real examples' `[:n1, :n2]` block of each array of a padded result.

  None if an array does not have `(p1, p2)` as its leading axes, or is
  traced (a network built from an outer transformation's values ran its own
  program inside that transformation, which compiles the call at the given
  sizes anyway).
  """
  leaves, treedef = jax.tree_util.tree_flatten(out)
  if not leaves or any(getattr(leaf, "shape", ())[:2] != (p1, p2)
                       or isinstance(leaf, jax.core.Tracer)
                       for leaf in leaves):
    return None
  return treedef.unflatten(
      [jax.device_put(np.asarray(leaf)[:n1, :n2]) for leaf in leaves])


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
