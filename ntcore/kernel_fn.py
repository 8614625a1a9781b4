"""`KernelFn`, the kernel function of a layer or network (kept importable here).

The engine lives in `ntcore/_network/` (see its README.md): the node types in
`nodes.py`, the user-facing call in `call.py`.
"""

from ntcore._network.nodes import KernelFn, LeafKernelFn
from ntcore._network.shapes import out_shape

__all__ = ["KernelFn", "LeafKernelFn", "out_shape"]
