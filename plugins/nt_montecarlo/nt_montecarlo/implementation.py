"""`NtkImplementation`: how the finite-width NTK is computed."""

from __future__ import annotations

import enum
from typing import Union

from nt_montecarlo.errors import EstimatorArgumentError


class NtkImplementation(enum.IntEnum):
  """Implementation of the empirical (finite-width) NTK; values as in NT.

  Novak et al. 2022, "Fast Finite Width Neural Tangent Kernel", compares
  them. In this version of nt-montecarlo:

  Attributes:
    AUTO: (`0`) in NT, picks the cheapest method by compiled FLOPs. Here it
      computes a Jacobian contraction (`1`) until the structured-derivatives
      method exists.
    JACOBIAN_CONTRACTION: (`1`, the default) `J(x1) J(x2)^T` from two
      reverse-mode Jacobians, contracted parameter by parameter. Best for
      small outputs and expensive forward passes (CNNs).
    NTK_VECTOR_PRODUCTS: (`2`) `Theta v = J(x1) (J(x2)^T v)` (one VJP, one
      JVP) for every basis vector `v` of the output of `f(x2)`; no Jacobian
      is instantiated. Best for cheap forward passes and many parameters
      (fully-connected networks).
    STRUCTURED_DERIVATIVES: (`3`) in NT, a custom interpreter that contracts
      structured primitive Jacobians. Not implemented yet: computed as a
      Jacobian contraction (`1`), which gives the same kernel, only without
      the speed-up.
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
