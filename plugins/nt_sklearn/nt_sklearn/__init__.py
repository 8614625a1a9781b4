"""nt-sklearn: infinite-width networks as scikit-learn estimators and kernels.

Also reachable through ntcore once installed: `ntcore.NTKRegressor`,
`ntcore.StaxKernel`, ... (the plugin registers them as estimators).
"""

from ntcore.registry.lazy import lazy_exports

# Imported on first use: loading the plugin must not import jax.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "EstimatorParamError": "nt_sklearn.errors",
    "NNGPClassifier": "nt_sklearn.estimators",
    "NNGPRegressor": "nt_sklearn.estimators",
    "NTKClassifier": "nt_sklearn.estimators",
    "NTKRegressor": "nt_sklearn.estimators",
    "StaxKernel": "nt_sklearn.kernel",
    "TargetError": "nt_sklearn.errors",
    "fully_connected": "nt_sklearn.networks",
})
