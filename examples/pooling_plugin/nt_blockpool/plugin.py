"""nt-blockpool's hook implementations: the layer it registers.

The plugin's modules are imported inside the hooks: loading the plugin (as
`ntcore --help` does) imports no jax.
"""

from ntcore.registry import LayerSpec, hookimpl


@hookimpl
def register_layers():
  # pylint: disable=import-outside-toplevel
  from nt_blockpool import blockpool
  return [LayerSpec("BlockAvgPool", blockpool.BlockAvgPool)]
