"""nt-step's hook implementations: the layers it registers."""

from ntcore.registry import LayerSpec, hookimpl

from nt_step import step


@hookimpl
def register_layers():
  return [LayerSpec("Step", step.Step)]
