"""Which plugin provides which name, and how to install it.

Strings only: nothing here imports a plugin. Used to tell a user what to
install. A monorepo test checks these tables against what the plugins really
register.
"""

import functools
import pathlib

from ntcore import errors

CORE_DISTRIBUTION = "ntcore-jax"
"""The core's distribution name (`pip install ntcore-jax`); it imports as
`ntcore`. The distribution `ntcore` on PyPI is an unrelated project."""

PLUGIN_PACKAGES = {
    "nt-dense": "nt_dense",
    "nt-conv": "nt_conv",
    "nt-attention": "nt_attention",
    "nt-montecarlo": "nt_montecarlo",
    "nt-taylor": "nt_taylor",
    "nt-ode": "nt_ode",
    "nt-dask": "nt_dask",
    "nt-sklearn": "nt_sklearn",
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
    "nt-sklearn": ("NTKRegressor", "NNGPRegressor", "NTKClassifier",
                   "NNGPClassifier", "StaxKernel"),
}

LAYER_PROVIDERS = {name: dist for dist, names in _LAYERS.items()
                   for name in names}
ESTIMATOR_PROVIDERS = {name: dist for dist, names in _ESTIMATORS.items()
                       for name in names}
ODE_SOLVER_PLUGIN = "nt-ode"


@functools.cache
def source_checkout() -> "pathlib.Path | None":
  """The source checkout this `ntcore` is imported from, or None.

  An editable install (`pip install -e .`) imports the core from the
  checkout itself, whose root holds `pyproject.toml` and `plugins/`; an
  install from a wheel or an index imports it from `site-packages`.
  """
  root = pathlib.Path(__file__).resolve().parents[2]
  if (root / "pyproject.toml").is_file() and (root / "plugins").is_dir():
    return root
  return None


def install_line(dist: str) -> str:
  """The command that installs plugin `dist`, fitting how the core was installed.

  Editable from a source checkout: the plugin's folder in it,
  `pip install -e plugins/nt_conv`. From a wheel or an index (or for a
  plugin that is not in the monorepo): `pip install nt-conv`.
  """
  package = PLUGIN_PACKAGES.get(dist)
  checkout = source_checkout()
  if package is not None and checkout is not None and (
      checkout / "plugins" / package).is_dir():
    return errors.INSTALL_HINT.format(package=package)
  return errors.INSTALL_FROM_INDEX.format(dist=dist)
