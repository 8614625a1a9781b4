"""nt-sklearn: infinite-width networks as scikit-learn estimators and kernels.

Also reachable through ntcore once installed: `ntcore.NTKRegressor`,
`ntcore.StaxKernel`, ... (the plugin registers them as estimators).
"""

from nt_sklearn.errors import EstimatorParamError, TargetError
from nt_sklearn.estimators import (NNGPClassifier, NNGPRegressor,
                                   NTKClassifier, NTKRegressor)
from nt_sklearn.kernel import StaxKernel
from nt_sklearn.networks import fully_connected

__all__ = ["EstimatorParamError", "NNGPClassifier", "NNGPRegressor",
           "NTKClassifier", "NTKRegressor", "StaxKernel", "TargetError",
           "fully_connected"]
