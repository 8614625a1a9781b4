"""`ntcore demo`: the NNGP and NTK of the NT paper's section 2.1 network.

The network is the paper's three-layer Erf network on 1-D inputs; the layers
come from the registry (the nt-dense plugin), so the demo names the plugin to
install when it is missing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def network():
  """The NT paper's section 2.1 network: Dense(512)-Erf, twice, then Dense(1)."""
  from ntcore import stax  # pylint: disable=import-outside-toplevel
  return stax.serial(
      stax.Dense(512, W_std=1.5, b_std=0.05), stax.Erf(),
      stax.Dense(512, W_std=1.5, b_std=0.05), stax.Erf(),
      stax.Dense(1, W_std=1.5, b_std=0.05))


def run(echo: Callable[[str], None] = print, n_points: int = 5) -> dict:
  """Prints the infinite-width NNGP and NTK on `n_points` inputs in [-pi, pi].

  Returns:
    `{"x": (n,), "nngp": (n, n), "ntk": (n, n)}` as numpy arrays.
  """
  _, _, kernel_fn = network()
  x = np.linspace(-np.pi, np.pi, n_points).reshape(-1, 1)
  k = kernel_fn(x, None, ("nngp", "ntk"))
  nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
  echo("Infinite-width kernels of the NT paper's section 2.1 network")
  echo("  serial(Dense(512, 1.5, 0.05), Erf, Dense(512, 1.5, 0.05), Erf, "
       "Dense(1, 1.5, 0.05))")
  for name, mat in (("NNGP", nngp), ("NTK", ntk)):
    echo(f"\n{name}:")
    echo("      x " + "".join(f"{v:>9.3f}" for v in x[:, 0]))
    for xi, row in zip(x[:, 0], mat):
      echo(f"{xi:>7.3f} " + "".join(f"{v:>9.4f}" for v in row))
  return {"x": x[:, 0], "nngp": nngp, "ntk": ntk}
