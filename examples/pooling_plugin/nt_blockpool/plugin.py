"""nt-blockpool's hook implementations: the layer it registers."""

from ntcore.registry import LayerSpec, hookimpl

from nt_blockpool import blockpool


@hookimpl
def register_layers():
  return [LayerSpec("BlockAvgPool", blockpool.BlockAvgPool)]
