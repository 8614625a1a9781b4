"""nt-attention: self-attention and graph aggregation layers for ntcore."""

from nt_attention._mechanism import AttentionMechanism
from nt_attention._pos_emb import PositionalEmbedding
from nt_attention.aggregate import Aggregate, AggregateImplementation
from nt_attention.attention import GlobalSelfAttention

__all__ = ["Aggregate", "AggregateImplementation", "AttentionMechanism",
           "GlobalSelfAttention", "PositionalEmbedding"]
