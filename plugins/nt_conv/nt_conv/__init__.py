"""nt-conv: convolutions, pooling and flattening over images for ntcore."""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin (as `ntcore --help` does)
# must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "AvgPool": "nt_conv.pooling",
    "Conv": "nt_conv.conv",
    "ConvLocal": "nt_conv.conv_local",
    "ConvTranspose": "nt_conv.conv",
    "DotGeneral": "nt_conv.dot_general",
    "Flatten": "nt_conv.flatten",
    "GlobalAvgPool": "nt_conv.global_pool",
    "GlobalSumPool": "nt_conv.global_pool",
    "ImageResize": "nt_conv.resize",
    "Index": "nt_conv.index",
    "MaxPool": "nt_conv.maxpool",
    "Slice": "nt_conv.index",
    "SumPool": "nt_conv.pooling",
})
