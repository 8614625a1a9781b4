"""nt-blockpool: average pooling over non-overlapping blocks (an example plugin)."""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin (as `ntcore --help` does)
# must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "BlockAvgPool": "nt_blockpool.blockpool",
})
