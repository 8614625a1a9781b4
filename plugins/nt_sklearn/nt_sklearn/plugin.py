"""nt-sklearn's hook implementation: its estimators, as `ntcore.<name>`."""

from ntcore.registry import EstimatorSpec, hookimpl

from nt_sklearn import estimators, kernel


@hookimpl
def register_estimators():
  return [
      EstimatorSpec("NTKRegressor", estimators.NTKRegressor),
      EstimatorSpec("NNGPRegressor", estimators.NNGPRegressor),
      EstimatorSpec("NTKClassifier", estimators.NTKClassifier),
      EstimatorSpec("NNGPClassifier", estimators.NNGPClassifier),
      EstimatorSpec("StaxKernel", kernel.StaxKernel),
  ]
