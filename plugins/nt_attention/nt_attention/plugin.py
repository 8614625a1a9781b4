"""nt-attention's hook implementations: the layers it registers."""

from ntcore.registry import LayerSpec, hookimpl

from nt_attention import aggregate, attention


@hookimpl
def register_layers():
  return [
      LayerSpec("GlobalSelfAttention", attention.GlobalSelfAttention),
      LayerSpec("Aggregate", aggregate.Aggregate),
  ]
