"""Which plugin provides which name: strings only, no imports.

Used to tell a user what to install. A monorepo test checks this table
against what the plugins really register.
"""

PLUGIN_PACKAGES = {
    "nt-dense": "nt_dense",
    "nt-conv": "nt_conv",
    "nt-attention": "nt_attention",
    "nt-montecarlo": "nt_montecarlo",
    "nt-taylor": "nt_taylor",
    "nt-ode": "nt_ode",
}

_LAYERS = {
    "nt-dense": (
        "Dense", "Relu", "LeakyRelu", "Abs", "ABRelu", "Erf", "Sigmoid_like",
        "Gelu", "Sin", "Cos", "Rbf", "Sign", "Exp", "ExpNormalized",
        "Gaussian", "Hermite", "Monomial", "RectifiedMonomial", "Polynomial",
        "Gabor", "Elementwise", "ElementwiseNumerical", "LayerNorm",
        "Dropout", "Tanh", "Sigmoid", "Softplus", "Swish"),
    "nt-conv": (
        "Conv", "ConvTranspose", "ConvLocal", "AvgPool", "SumPool",
        "MaxPool", "GlobalAvgPool", "GlobalSumPool", "Flatten", "ImageResize",
        "Index", "Slice", "DotGeneral"),
    "nt-attention": ("GlobalSelfAttention", "Aggregate"),
}

_ESTIMATORS = {
    "nt-montecarlo": (
        "monte_carlo_kernel_fn", "empirical_kernel_fn", "empirical_ntk_fn",
        "empirical_nngp_fn", "empirical_ntk_vp_fn", "NtkImplementation"),
    "nt-taylor": ("linearize", "taylor_expand"),
}

LAYER_PROVIDERS = {name: dist for dist, names in _LAYERS.items()
                   for name in names}
ESTIMATOR_PROVIDERS = {name: dist for dist, names in _ESTIMATORS.items()
                       for name in names}
ODE_SOLVER_PLUGIN = "nt-ode"


def install_line(dist: str) -> str:
  """The command that installs plugin `dist` from a source checkout."""
  package = PLUGIN_PACKAGES.get(dist, dist.replace("-", "_"))
  return f"pip install -e plugins/{package}"
