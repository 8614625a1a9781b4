"""Empirical NNGP, and the joint NNGP/NTK kernel function of a finite network.

`empirical_nngp_fn` is the outer product of outputs, `f(x1) f(x2)^T`;
`empirical_kernel_fn` returns it and/or the empirical NTK (`ntk.py`) for
one draw of the parameters. Averaging such draws over random
initializations is `monte_carlo_kernel_fn`.

Output layout (NT's): the output axes in order, traced ones removed,
diagonal ones once, all others twice (`x1`'s, then `x2`'s); see `_axes`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import jax

from nt_montecarlo import _args, _get, _jit
from nt_montecarlo._axes import Axes, Pairing
from nt_montecarlo.implementation import (DEFAULT_NTK_IMPLEMENTATION,
                                          NtkImplementation)
from nt_montecarlo.ntk import empirical_ntk_fn

PyTree = Any
ApplyFn = Callable[..., PyTree]


def empirical_nngp_fn(f: ApplyFn, trace_axes: Axes = (-1,),
                      diagonal_axes: Axes = ()) -> Callable[..., PyTree]:
  """Returns `nngp_fn(x1, x2, params, **apply_fn_kwargs)`: `f(x1) f(x2)^T`.

  One sample of the NNGP kernel: the outer product of the outputs, divided
  by the size of the traced axes, so that at initialization its average over
  parameter draws is the output covariance (Neal 1994; Lee et al. 2018).

  Args:
    f: `f(params, x, **kwargs) -> outputs`, any pytrees; for several outputs
      each gets its own kernel.
    trace_axes: output axes summed over and divided by their size; absent
      from the result.
    diagonal_axes: output axes on which only matching positions are kept;
      present once in the result.

  Returns:
    `nngp_fn(x1, x2, params, **apply_fn_kwargs)`; `x2=None` means `x2 = x1`
    (and `f` is evaluated once). Jitted internally like `empirical_ntk_fn`
    (array keywords traced, others static). Shapes as in `empirical_ntk_fn`:
    `(N1, N2)` for the defaults and outputs `(N, C)`.

  Raises:
    ShapeError: axes outside the output, or traced/diagonal axes of
      different sizes in `f(x1)` and `f(x2)`.
  """

  def nngp_fn(x1: PyTree, x2: Optional[PyTree], params: PyTree,
              **apply_fn_kwargs) -> PyTree:
    """One sample of the empirical NNGP; see `empirical_nngp_fn`."""
    kwargs1, kwargs2 = _args.split_kwargs(apply_fn_kwargs, x1, x2)
    out1 = f(params, x1, **kwargs1)
    out2 = out1 if _args.is_none(x2) else f(params, x2, **kwargs2)

    def contract(o1, o2):
      return Pairing(o1.shape, o2.shape, trace_axes,
                     diagonal_axes).contract(o1, o2)

    return jax.tree_util.tree_map(contract, out1, out2)

  return _jit.jit_kernel_fn(nngp_fn)


def empirical_kernel_fn(
    f: ApplyFn,
    trace_axes: Axes = (-1,),
    diagonal_axes: Axes = (),
    vmap_axes: Any = None,
    implementation: Union[int, NtkImplementation] = DEFAULT_NTK_IMPLEMENTATION,
    _j_rules: bool = True,
    _s_rules: bool = True,
    _fwd: Optional[bool] = None,
) -> Callable[..., Any]:
  """Returns `kernel_fn(x1, x2, get, params, **apply_fn_kwargs)`.

  One draw of the NNGP (`empirical_nngp_fn`) and/or NTK
  (`empirical_ntk_fn`) of the finite network `f` at `params`.

  Args:
    f: `f(params, x, **kwargs) -> outputs`, any pytrees.
    trace_axes: output axes summed over (divided by their size).
    diagonal_axes: output axes of which only the diagonal is kept.
    vmap_axes: NTK only; see `empirical_ntk_fn`.
    implementation: NTK only; an `NtkImplementation` or the int 0-3 (0
      AUTO, 1 Jacobian contraction, 2 NTK-vector products, 3 structured
      derivatives; see `empirical_ntk_fn`).
    _j_rules, _s_rules, _fwd: accepted for NT compatibility, unused.

  Returns:
    `kernel_fn(x1, x2, get, params, **apply_fn_kwargs)`. `get` is `"nngp"`
    or `"ntk"` (the array), a tuple of them (an `EmpiricalKernel`
    namedtuple in that order) or None (both). `x2=None` means `x2 = x1`.
    When `f` returns a list or tuple, the result is a list or tuple of those.

  Raises:
    EstimatorArgumentError: an unknown `get` or `implementation`.
  """
  fns = {
      "nngp": empirical_nngp_fn(f, trace_axes, diagonal_axes),
      "ntk": empirical_ntk_fn(f, trace_axes, diagonal_axes, vmap_axes,
                              implementation, _j_rules, _s_rules, _fwd),
  }

  def kernel_fn(x1: PyTree, x2: Optional[PyTree], get: _get.Get,
                params: PyTree, **apply_fn_kwargs) -> Any:
    """One draw of the empirical kernels; see `empirical_kernel_fn`."""
    names, single = _get.canonical_get(get)
    out = {g: fns[g](x1, x2, params, **apply_fn_kwargs) for g in names}
    return _get.package(out, names, single, "EmpiricalKernel")

  return kernel_fn
