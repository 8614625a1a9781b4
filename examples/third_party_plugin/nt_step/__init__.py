"""nt-step: an example third-party ntcore plugin providing `Step`."""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin (as `ntcore --help` does)
# must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Step": "nt_step.step",
})
