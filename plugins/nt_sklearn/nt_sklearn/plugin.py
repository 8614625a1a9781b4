"""nt-sklearn's hook implementation: its estimators, as `ntcore.<name>`.

The estimators (and scikit-learn, and jax) are imported inside the hook:
loading the plugin (as `ntcore --help` does) imports none of them.
"""

from ntcore.registry import EstimatorSpec, hookimpl


@hookimpl
def register_estimators():
  # pylint: disable=import-outside-toplevel
  from nt_sklearn import estimators, kernel
  return [
      EstimatorSpec("NTKRegressor", estimators.NTKRegressor),
      EstimatorSpec("NNGPRegressor", estimators.NNGPRegressor),
      EstimatorSpec("NTKClassifier", estimators.NTKClassifier),
      EstimatorSpec("NNGPClassifier", estimators.NNGPClassifier),
      EstimatorSpec("StaxKernel", kernel.StaxKernel),
  ]
