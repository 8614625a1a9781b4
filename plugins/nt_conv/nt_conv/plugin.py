"""nt-conv's hook implementations: the layers it registers.

The plugin's modules are imported inside the hooks: loading the plugin (as
`ntcore --help` does) imports no jax.
"""

from ntcore.registry import LayerSpec, hookimpl


@hookimpl
def register_layers():
  # pylint: disable=import-outside-toplevel
  from nt_conv import conv, conv_local, flatten, global_pool, pooling
  from nt_conv import dot_general, index, maxpool, resize
  return [
      LayerSpec("Conv", conv.Conv),
      LayerSpec("ConvTranspose", conv.ConvTranspose),
      LayerSpec("ConvLocal", conv_local.ConvLocal),
      LayerSpec("AvgPool", pooling.AvgPool),
      LayerSpec("SumPool", pooling.SumPool),
      LayerSpec("GlobalAvgPool", global_pool.GlobalAvgPool),
      LayerSpec("GlobalSumPool", global_pool.GlobalSumPool),
      LayerSpec("Flatten", flatten.Flatten),
      LayerSpec("ImageResize", resize.ImageResize),
      LayerSpec("Index", index.Index),
      LayerSpec("Slice", index.Slice),
      LayerSpec("DotGeneral", dot_general.DotGeneral),
      LayerSpec("MaxPool", maxpool.MaxPool, kernel="finite-only"),
  ]
