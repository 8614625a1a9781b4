"""A `Kernel` given to `kernel_fn` must hold the blocks the network reads."""

import numpy as np
import pytest

import ntcore as nt
from ntcore import stax

X = np.random.RandomState(0).normal(size=(3, 5, 5, 2))
BLOCK = stax.serial(stax.Conv(8, (3, 3)), stax.Relu())


def test_a_diagonal_kernel_into_a_layer_that_reads_off_diagonals_raises():
  readout = stax.serial(stax.Conv(8, (3, 3)), stax.GlobalAvgPool(),
                        stax.Dense(1))
  k = BLOCK[2](X, None, diagonal_spatial=True)
  with pytest.raises(nt.KernelRequirementError, match="diagonal_spatial=False"):
    readout[2](k)


@pytest.mark.parametrize("diagonal_spatial", [None, True, False])
def test_composing_kernel_fns_is_the_kernel_of_the_composition(
    diagonal_spatial):
  readout = stax.serial(stax.Flatten(), stax.Dense(1))
  want = stax.serial(BLOCK, readout)[2](X, None, "nngp")
  kwargs = {} if diagonal_spatial is None else dict(
      diagonal_spatial=diagonal_spatial)
  got = readout[2](BLOCK[2](X, None, **kwargs), get="nngp")
  # Full and diagonal spatial blocks reach the Relu diagonal by different
  # (equally exact) formulas: round-off near correlation 1 differs.
  np.testing.assert_allclose(got, want, rtol=1e-8)
