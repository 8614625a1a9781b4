"""`NtkImplementation`: how the finite-width NTK is computed."""

from __future__ import annotations

import enum
from typing import Union

from nt_montecarlo.errors import EstimatorArgumentError


class NtkImplementation(enum.IntEnum):
  """Implementation of the empirical (finite-width) NTK; values as in NT.

  Novak et al. 2022, "Fast Finite Width Neural Tangent Kernel", compares
  them. All four give the same kernel to float64 round-off.

  Attributes:
    AUTO: (`0`) the cheapest of 1-3 by a cost model evaluated on the
      shapes at trace time (FLOPs and materialized entries from `f`'s
      jaxpr, Novak et al. Table 1), with throughputs measured on a CPU
      (`_auto`, `benchmarks/calibrate_auto.py`). On the CPU benchmark grid
      it picks the fastest in 16 of 20 cases, and otherwise one at most
      2.4x slower (small CNNs taking a few ms). Not measured on GPU/TPU:
      there it uses the CPU constants, an unverified guess.
    JACOBIAN_CONTRACTION: (`1`, the default) `J(x1) J(x2)^T` from two
      reverse-mode Jacobians, contracted parameter by parameter. Competitive
      for small CNNs with `vmap_axes`.
    NTK_VECTOR_PRODUCTS: (`2`) `Theta v = J(x1) (J(x2)^T v)` (one VJP, one
      JVP) for every basis vector `v` of the output of `f(x2)`; no Jacobian
      is instantiated. Wins without `vmap_axes` when there are few outputs
      and the Jacobians would be large.
    STRUCTURED_DERIVATIVES: (`3`) follows each parameter through `f`'s
      jaxpr and contracts the Jacobians of primitive outputs with the
      primitives' structure in closed form (dense `dot_general`,
      `conv_general_dilated`, elementwise scale/bias, broadcasts,
      transposes, size-1 reshapes); other uses fall back to that leaf's
      plain Jacobian with a one-time warning. Fastest on FC networks by
      10-300x on CPU and on wide CNNs with `vmap_axes`.
  """

  AUTO = 0
  JACOBIAN_CONTRACTION = 1
  NTK_VECTOR_PRODUCTS = 2
  STRUCTURED_DERIVATIVES = 3


DEFAULT_NTK_IMPLEMENTATION = NtkImplementation.JACOBIAN_CONTRACTION


def canonical_implementation(
    implementation: Union[int, NtkImplementation]) -> NtkImplementation:
  """`implementation` as an `NtkImplementation`; accepts the ints 0-3."""
  try:
    return NtkImplementation(implementation)
  except ValueError:
    choices = ", ".join(f"{m.value} ({m.name})" for m in NtkImplementation)
    raise EstimatorArgumentError(
        f"implementation={implementation!r} is not an NtkImplementation. "
        f"Pass one of {choices}.") from None
