"""nt-taylor: linearize and taylor_expand functions in their parameters."""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin (as `ntcore --help` does)
# must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "linearize": "nt_taylor.expand",
    "taylor_expand": "nt_taylor.expand",
})
