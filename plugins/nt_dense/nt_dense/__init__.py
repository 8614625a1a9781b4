"""nt-dense: Dense layers, nonlinearities, LayerNorm and Dropout for ntcore."""

from nt_dense.dense import Dense
from nt_dense.rectified import ABRelu, Abs, LeakyRelu, Relu

__all__ = ["ABRelu", "Abs", "Dense", "LeakyRelu", "Relu"]
