"""nt-taylor: linearize and taylor_expand functions in their parameters."""

from nt_taylor.expand import linearize, taylor_expand

__all__ = ["linearize", "taylor_expand"]
