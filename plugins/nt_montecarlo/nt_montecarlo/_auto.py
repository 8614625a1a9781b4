"""`NtkImplementation.AUTO`: pick the cheapest implementation by a cost model.

The model is the FLOP count of each implementation (Novak et al. 2022,
Table 1), evaluated on the actual shapes at trace time, turned into seconds
by per-kind throughputs measured on a CPU (`benchmarks/calibrate_auto.py`).
With `F` the forward FLOPs of `f` on a batch, `M = |f(x)|` (all output
entries), `O = M / N` per example and `P` the parameter count:

* Jacobian contraction: `3 F M'` for the Jacobian (per output row: the
  forward pass, input and weight cotangents; `M' = O` per example with
  `vmap_axes`, else `M`, since reverse mode then sees the whole batch), plus
  the contraction `sum_W cost(J1_W J2_W^T)` (about `N1 N2 O^2 P` untraced)
  and the `M P` Jacobian entries it writes.
* NTK-vector products: one VJP and one JVP per output entry of `f(x2)`:
  `3 M2 (F1 + F2)` (`3 O (N2 F1 + N1 F2)` with `vmap_axes`), no `P` term,
  and the `M1 M2` entries of the full kernel.
* Structured derivatives: `2 F M'` for the Jacobian with respect to the
  primitive outputs `y` (no weight cotangents), plus the einsums of
  `_structured`, costed by `opt_einsum`'s optimal path, and their operands'
  entries.

Each feature (`FEATURES`) gets its own seconds-per-unit (`SECONDS_PER`):
Jacobians, vector products and einsums run at different speeds on the same
FLOPs (the conv weight cotangent is slow on CPU; memory traffic matters for
the large Jacobians). Fitted on a loaded 2-core x86 CPU, float32, 5 FC and
CNN sizes x traced/untraced x with/without `vmap_axes` (20 cases): the pick
is the measured fastest in 16/20, and on average 21% slower than the
fastest (worst 2.4x, on a CNN taking 3-10 ms). Not measured on a GPU or
TPU: there the CPU constants are used, which is a guess; rerun
`benchmarks/calibrate_auto.py` on the accelerator and paste its constants.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import numpy as np
import opt_einsum

from nt_montecarlo import _args, _program, _structured
from nt_montecarlo._axes import Pairing
from nt_montecarlo.implementation import NtkImplementation

# The cost model's features, and seconds per unit of each, fitted on CPU by
# `benchmarks/calibrate_auto.py` (non-negative least squares on relative
# error over 20 FC/CNN cases; see the module docstring).
FEATURES = ("jc_jacobian_flops", "sd_jacobian_flops", "vector_product_flops",
            "einsum_flops", "entries", "einsums")
SECONDS_PER = (4.1e-11, 4.11e-12, 3.53e-11, 3.23e-11, 4.3e-9, 8.95e-5)


def forward_flops(prog: _program.Program) -> float:
  """FLOPs of one evaluation: `2 |y| K` for contractions, `|y|` otherwise."""
  total = 0.
  for e in prog.eqns:
    out = sum(math.prod(prog.avals[v].shape) for v in e.outvars)
    name = e.prim.name
    if name == "dot_general":
      (lc, _), _ = e.params["dimension_numbers"]
      lhs = e.invars[0]
      shape = (np.shape(lhs.val) if isinstance(lhs, _program.Lit)
               else prog.avals[lhs].shape)
      total += 2. * out * math.prod(shape[d] for d in lc)
    elif name == "conv_general_dilated":
      rhs_spec = e.params["dimension_numbers"][1]
      rhs = prog.avals[e.invars[1]].shape if not isinstance(
          e.invars[1], _program.Lit) else np.shape(e.invars[1].val)
      total += 2. * out * math.prod(rhs[d] for d in rhs_spec[1:])
    else:
      total += out
  return total


def _einsum_flops(operands: list, out: list) -> float:
  """`opt_einsum`'s FLOP count of the optimal path; operands are
  `(shape, labels)` pairs."""
  symbols = {}
  terms = []
  for _, labels in operands:
    terms.append("".join(symbols.setdefault(l, opt_einsum.get_symbol(
        len(symbols))) for l in labels))
  eq = ",".join(terms) + "->" + "".join(symbols[l] for l in out)
  _, info = opt_einsum.contract_path(eq, *[s for s, _ in operands],
                                     shapes=True, optimize="optimal")
  return float(info.opt_cost)


def _full_program(f, prep, params, x, kwargs):
  dyn = {k: v for k, v in kwargs.items() if _structured._is_array(v)}
  static = {k: v for k, v in kwargs.items() if k not in dyn}
  structs = [_structured._drop_axis(t, None) for t in (params, x, dyn)]
  return _program.trace(lambda p, x, d: f(p, x, **static, **d), *structs)


def _quiet_specs(*args) -> list:
  """`_structured.einsum_specs` without its fallback warnings: they are
  for whoever runs structured derivatives, which AUTO may not pick."""
  warned = set(_structured._WARNED)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", _structured.StructuredDerivativesWarning)
    specs = list(_structured.einsum_specs(*args))
  _structured._WARNED.clear()
  _structured._WARNED.update(warned)
  return specs


def components(f, prep: _args.Prepared, params: Any, x1: Any, x2: Any,
               trace_axes, diagonal_axes) -> dict:
  """`{implementation: feature vector}`, features as in `FEATURES`."""
  same = _args.is_none(x2)
  x2 = x1 if same else x2
  kw2 = prep.kwargs1 if same else prep.kwargs2
  flops1 = forward_flops(_full_program(f, prep, params, x1, prep.kwargs1))
  flops2 = flops1 if same else forward_flops(
      _full_program(f, prep, params, x2, kw2))
  outs1 = jax.tree_util.tree_leaves(prep.fx1)
  outs2 = jax.tree_util.tree_leaves(prep.fx2)
  m1 = sum(math.prod(o.shape) for o in outs1)
  m2 = sum(math.prod(o.shape) for o in outs2)
  n1 = len(jax.tree_util.tree_leaves(x1)[0])
  n2 = len(jax.tree_util.tree_leaves(x2)[0])
  rows1, rows2 = (m1 / n1, m2 / n2) if prep.vmapped else (m1, m2)
  # Per output row: forward, input cotangents, weight cotangents (~F each);
  # structured derivatives skip the last.
  jac = flops1 * rows1 + (0. if same else flops2 * rows2)
  if prep.vmapped:
    nvp = 3. * (m2 / n2) * (n2 * flops1 + n1 * flops2)
  else:
    nvp = 3. * m2 * (flops1 + flops2)
  n_params = sum(np.size(w) for w in jax.tree_util.tree_leaves(params))

  jc_flops, jc_count = 0., 0
  for o1, o2 in zip(outs1, outs2):
    pairing = Pairing(o1.shape, o2.shape, trace_axes, diagonal_axes)
    for w in jax.tree_util.tree_leaves(params):
      extra = [-1 - d for d in range(np.ndim(w))]
      jc_flops += _einsum_flops(
          [(o1.shape + np.shape(w), pairing.sub1 + extra),
           (o2.shape + np.shape(w), pairing.sub2 + extra)], pairing.out)
      jc_count += 1
  sd_flops, sd_count, sd_entries = 0., 0, 0.
  for operands, out in _quiet_specs(f, prep, params, x1,
                                    None if same else x2, trace_axes,
                                    diagonal_axes):
    sd_flops += _einsum_flops(operands, out)
    sd_count += 1
    sd_entries += sum(math.prod(shape) for shape, _ in operands)

  jc_entries = (m1 + (0 if same else m2)) * n_params
  return {
      NtkImplementation.JACOBIAN_CONTRACTION: (
          3. * jac, 0., 0., jc_flops, jc_entries, jc_count),
      NtkImplementation.NTK_VECTOR_PRODUCTS: (0., 0., nvp, 0., m1 * m2, 0),
      NtkImplementation.STRUCTURED_DERIVATIVES: (
          0., 2. * jac, 0., sd_flops, sd_entries, sd_count),
  }


def estimate(f, prep: _args.Prepared, params: Any, x1: Any, x2: Any,
             trace_axes, diagonal_axes) -> dict:
  """Estimated seconds of each implementation on these shapes."""
  costs = components(f, prep, params, x1, x2, trace_axes, diagonal_axes)
  return {k: float(np.dot(SECONDS_PER, v)) for k, v in costs.items()}


def choose(f, prep, params, x1, x2, trace_axes, diagonal_axes
           ) -> NtkImplementation:
  """The implementation with the smallest `estimate` (ties: lowest value)."""
  costs = estimate(f, prep, params, x1, x2, trace_axes, diagonal_axes)
  return min(costs, key=lambda k: (costs[k], k.value))


def pick(f, x1, x2, params, trace_axes=(-1,), diagonal_axes=(),
         vmap_axes=None, **apply_fn_kwargs) -> NtkImplementation:
  """What `AUTO` runs for these arguments (as `empirical_ntk_fn` takes
  them); traces `f` abstractly, computes nothing."""
  prep = _args.prepare(f, apply_fn_kwargs, params, vmap_axes, x1, x2)
  return choose(f, prep, params, x1, x2, trace_axes, diagonal_axes)
