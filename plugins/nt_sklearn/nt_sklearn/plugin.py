"""nt-sklearn's hook implementation: its estimators, as `ntcore.<name>`.

They are registered by reference: scikit-learn (2 s and about 90 MB to
import) is imported when one of them is first used, not when another
plugin's estimator (`ntcore.empirical_ntk_fn`) builds the registry.
"""

from ntcore.registry import EstimatorSpec, hookimpl

_ESTIMATORS = {
    "NTKRegressor": ("estimators", "Regression with the NTK: the infinite "
                     "ensemble of the network trained on the MSE."),
    "NNGPRegressor": ("estimators", "Regression with the NNGP: the exact "
                      "Bayesian posterior of the infinitely wide network."),
    "NTKClassifier": ("estimators", "Classification by the NTK regression of "
                      "centred one-hot targets."),
    "NNGPClassifier": ("estimators", "Classification by the NNGP posterior "
                       "mean of centred one-hot targets."),
    "StaxKernel": ("kernel", "The NNGP (or NTK) of a network, with `W_std` "
                   "and `b_std` to fit."),
}


@hookimpl
def register_estimators():
  return [EstimatorSpec(name, f"nt_sklearn.{module}:{name}", doc)
          for name, (module, doc) in _ESTIMATORS.items()]
