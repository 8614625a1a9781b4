"""Errors nt-attention raises, beside the core's (`ntcore.errors`)."""

from ntcore.errors import NtcoreError


class PatternError(NtcoreError, ValueError):
  """A graph `pattern` (for `Aggregate`) of the wrong shape, type or pairing.

  An `NtcoreError`, so `except ntcore.NtcoreError` catches it with the
  core's errors, and a `ValueError`, what NT raises for a bad pattern.
  """
