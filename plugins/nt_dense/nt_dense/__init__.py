"""nt-dense: Dense layers, nonlinearities, LayerNorm and Dropout for ntcore."""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin (as `ntcore --help` does)
# must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "ABRelu": "nt_dense.rectified",
    "Abs": "nt_dense.rectified",
    "Cos": "nt_dense.periodic",
    "Dense": "nt_dense.dense",
    "Dropout": "nt_dense.dropout",
    "Elementwise": "nt_dense.custom",
    "ElementwiseNumerical": "nt_dense.custom",
    "Erf": "nt_dense.sigmoidal",
    "Exp": "nt_dense.exponential",
    "ExpNormalized": "nt_dense.exponential",
    "Gabor": "nt_dense.periodic",
    "Gaussian": "nt_dense.exponential",
    "Gelu": "nt_dense.sigmoidal",
    "Hermite": "nt_dense.polynomial",
    "LayerNorm": "nt_dense.normalization",
    "LeakyRelu": "nt_dense.rectified",
    "Monomial": "nt_dense.polynomial",
    "Polynomial": "nt_dense.polynomial",
    "Rbf": "nt_dense.periodic",
    "RectifiedMonomial": "nt_dense.polynomial",
    "Relu": "nt_dense.rectified",
    "Sigmoid": "nt_dense.numerical",
    "Sigmoid_like": "nt_dense.sigmoidal",
    "Sign": "nt_dense.sign",
    "Sin": "nt_dense.periodic",
    "Softplus": "nt_dense.numerical",
    "Swish": "nt_dense.numerical",
    "Tanh": "nt_dense.numerical",
})
