"""nt-taylor's hook implementations.

The plugin's modules are imported inside the hooks: loading the plugin (as
`ntcore --help` does) imports no jax.
"""

from ntcore.registry import EstimatorSpec, hookimpl


@hookimpl
def register_estimators():
  # pylint: disable=import-outside-toplevel
  from nt_taylor import expand
  return [
      EstimatorSpec("linearize", expand.linearize),
      EstimatorSpec("taylor_expand", expand.taylor_expand),
  ]
