"""Errors raised by nt-montecarlo; all are `ntcore.NtcoreError`s."""

from __future__ import annotations

from ntcore import NtcoreError


class EstimatorArgumentError(NtcoreError, ValueError):
  """An estimator argument with a value it cannot take.

  `n_samples`, `implementation` or `get` outside what is accepted. Also a
  `ValueError`, which is what Neural Tangents raises for these.
  """
