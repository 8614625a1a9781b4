"""Parameters drawn with the random bits NT 0.6.5 drew.

JAX 0.5 made `jax_threefry_partitionable` the default, which changes what
`random.split` and `random.normal` return for a given key. NT 0.6.5 ran on
JAX 0.4, whose default was the older scheme, so an NT program's
`init_fn(PRNGKey(0), shape)` gets NT's parameters only under it; every
`init_fn` of ntcore's layers and combinators draws under it (tested
against NT's own parameters in `tests/test_nt_parameters.py`). The older
scheme is also cheaper on the CPU: measured (jax 0.10.2, 2 cores), one
Conv's weight draw compiled in 0.36 s with 22 MB against 1.0 s with 41 MB,
and 16M normals ran in 0.18 s against 0.31 s. nt-montecarlo splits its
per-sample keys the same way. Other random numbers (yours, and `apply_fn`'s
`rng` for Dropout) follow JAX's setting.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax


def with_nt_bits(init_fn: Callable) -> Callable:
  """`init_fn`, drawing under `jax.threefry_partitionable(False)`."""

  @functools.wraps(init_fn)
  def wrapped(key, input_shape):
    with jax.threefry_partitionable(False):
      return init_fn(key, input_shape)

  return wrapped
