"""nt-conv: convolutions, pooling and flattening over images for ntcore."""

from nt_conv.conv import Conv, ConvTranspose
from nt_conv.conv_local import ConvLocal
from nt_conv.flatten import Flatten
from nt_conv.global_pool import GlobalAvgPool, GlobalSumPool
from nt_conv.pooling import AvgPool, SumPool
from nt_conv.dot_general import DotGeneral
from nt_conv.index import Index, Slice
from nt_conv.maxpool import MaxPool
from nt_conv.resize import ImageResize

__all__ = ["AvgPool", "Conv", "ConvLocal", "ConvTranspose", "Flatten",
           "GlobalAvgPool", "GlobalSumPool", "SumPool"]
__all__ += ["DotGeneral", "ImageResize", "Index", "MaxPool", "Slice"]
