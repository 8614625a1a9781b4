"""Errors of nt-sklearn: bad estimator parameters and training targets."""

from ntcore.errors import NtcoreError


class EstimatorParamError(NtcoreError, ValueError):
  """An estimator or kernel parameter that cannot describe a network."""


class TargetError(NtcoreError, ValueError):
  """Training targets an estimator cannot fit (one class, say)."""


NETWORK_TYPE = (
    "network={network!r} is neither a stax network nor a factory. Pass None "
    "(a fully-connected network built from depth, W_std, b_std and "
    "nonlinearity), an (init_fn, apply_fn, kernel_fn) triple such as "
    "stax.serial(...), or a function returning one, e.g. "
    "network=lambda W_std, b_std: models.FullyConnected(2, W_std, b_std)."
)
