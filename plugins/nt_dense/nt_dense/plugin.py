"""nt-dense's hook implementations: the layers it registers.

The plugin's modules are imported inside the hooks: loading the plugin (as
`ntcore --help` does) imports no jax.
"""

from ntcore.registry import LayerSpec, hookimpl


@hookimpl
def register_layers():
  # pylint: disable=import-outside-toplevel
  from nt_dense import dense, rectified
  from nt_dense import exponential, periodic, sigmoidal, sign
  from nt_dense import custom, dropout, normalization, numerical, polynomial
  return [
      LayerSpec("Dense", dense.Dense),
      LayerSpec("ABRelu", rectified.ABRelu),
      LayerSpec("Relu", rectified.Relu),
      LayerSpec("LeakyRelu", rectified.LeakyRelu),
      LayerSpec("Abs", rectified.Abs),
      LayerSpec("Erf", sigmoidal.Erf),
      LayerSpec("Sigmoid_like", sigmoidal.Sigmoid_like),
      LayerSpec("Gelu", sigmoidal.Gelu),
      LayerSpec("Sin", periodic.Sin),
      LayerSpec("Cos", periodic.Cos),
      LayerSpec("Rbf", periodic.Rbf),
      LayerSpec("Gabor", periodic.Gabor),
      LayerSpec("Exp", exponential.Exp),
      LayerSpec("ExpNormalized", exponential.ExpNormalized),
      LayerSpec("Gaussian", exponential.Gaussian),
      LayerSpec("Sign", sign.Sign),
      LayerSpec("Monomial", polynomial.Monomial),
      LayerSpec("RectifiedMonomial", polynomial.RectifiedMonomial),
      LayerSpec("Polynomial", polynomial.Polynomial),
      LayerSpec("Hermite", polynomial.Hermite),
      LayerSpec("Elementwise", custom.Elementwise),
      LayerSpec("ElementwiseNumerical", custom.ElementwiseNumerical,
                kernel="numerical"),
      LayerSpec("Tanh", numerical.Tanh, kernel="numerical"),
      LayerSpec("Sigmoid", numerical.Sigmoid, kernel="numerical"),
      LayerSpec("Softplus", numerical.Softplus, kernel="numerical"),
      LayerSpec("Swish", numerical.Swish, kernel="numerical"),
      LayerSpec("LayerNorm", normalization.LayerNorm),
      LayerSpec("Dropout", dropout.Dropout),
  ]
