"""nt-blockpool: average pooling over non-overlapping blocks (an example plugin)."""

from nt_blockpool.blockpool import BlockAvgPool

__all__ = ["BlockAvgPool"]
