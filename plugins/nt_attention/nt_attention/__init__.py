"""nt-attention: self-attention and graph aggregation layers for ntcore."""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin (as `ntcore --help` does)
# must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Aggregate": "nt_attention.aggregate",
    "AggregateImplementation": "nt_attention.aggregate",
    "AttentionMechanism": "nt_attention._mechanism",
    "GlobalSelfAttention": "nt_attention.attention",
    "PatternError": "nt_attention.errors",
    "PositionalEmbedding": "nt_attention._pos_emb",
})
