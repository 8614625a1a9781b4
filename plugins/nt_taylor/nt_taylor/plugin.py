"""nt-taylor's hook implementations."""

from ntcore.registry import EstimatorSpec, hookimpl

from nt_taylor import expand


@hookimpl
def register_estimators():
  return [
      EstimatorSpec("linearize", expand.linearize),
      EstimatorSpec("taylor_expand", expand.taylor_expand),
  ]
