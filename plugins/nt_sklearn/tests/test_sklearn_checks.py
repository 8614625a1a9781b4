"""scikit-learn's estimator checks on the four estimators.

All of them pass. `check_methods_sample_order_invariance` used to fail for
the NTK estimators: predicting on the training inputs in another order pairs
an input with itself by the cross formula, whose ReLU angle lost half its
digits to a fused multiply-add in `q1 q2 - c^2` (~1e-8 after inverting the
lightly regularized kernel, above the check's atol of 1e-9);
`ntcore.kernel_ops.gram` is exact where `c == q1 == q2`. The set takes
~40 s of CPU (JAX compiles the kernels once per padded input shape), so it
is marked slow.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from nt_sklearn import (NNGPClassifier, NNGPRegressor, NTKClassifier,
                        NTKRegressor)

ESTIMATORS = [NTKRegressor(), NNGPRegressor(), NTKClassifier(),
              NNGPClassifier()]


@pytest.mark.slow
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
  check(estimator)
