"""nt-dense: Dense layers, nonlinearities, LayerNorm and Dropout for ntcore."""

from nt_dense.dense import Dense
from nt_dense.rectified import ABRelu, Abs, LeakyRelu, Relu
from nt_dense.exponential import Exp, ExpNormalized, Gaussian
from nt_dense.periodic import Cos, Gabor, Rbf, Sin
from nt_dense.sigmoidal import Erf, Gelu, Sigmoid_like
from nt_dense.sign import Sign
from nt_dense.custom import Elementwise, ElementwiseNumerical
from nt_dense.dropout import Dropout
from nt_dense.normalization import LayerNorm
from nt_dense.numerical import Sigmoid, Softplus, Swish, Tanh
from nt_dense.polynomial import Hermite, Monomial, Polynomial, RectifiedMonomial

__all__ = ["ABRelu", "Abs", "Dense", "LeakyRelu", "Relu"]
__all__ += ["Cos", "Erf", "Exp", "ExpNormalized", "Gabor", "Gaussian", "Gelu",
            "Rbf", "Sigmoid_like", "Sign", "Sin"]
__all__ += ["Dropout", "Elementwise", "ElementwiseNumerical", "Hermite",
            "LayerNorm", "Monomial", "Polynomial", "RectifiedMonomial",
            "Sigmoid", "Softplus", "Swish", "Tanh"]
