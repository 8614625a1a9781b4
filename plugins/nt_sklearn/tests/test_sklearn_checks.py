"""scikit-learn's estimator checks on the four estimators.

Each check that does not pass is listed with its reason. The set takes
~40 s of CPU (JAX compiles the kernels once per padded input shape), so it
is marked slow.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from nt_sklearn import (NNGPClassifier, NNGPRegressor, NTKClassifier,
                        NTKRegressor)

ESTIMATORS = [NTKRegressor(), NNGPRegressor(), NTKClassifier(),
              NNGPClassifier()]


SAME_INPUT_ROUND_OFF = (
    "predicting on the training inputs in another order: the test-train "
    "NTK then pairs an input with itself by the cross formula (not as the "
    "same example), whose ReLU angle is exact only to sqrt(eps); the NTK is "
    "linear in that angle, and inverting the lightly regularized kernel "
    "(diag_reg=1e-4) amplifies it to ~1e-8, above the check's atol of 1e-9")


def expected_failed_checks(estimator):
  """Checks the NTK estimators fail, with the reason (NNGP: none)."""
  if estimator.kind == "ntk":
    return {"check_methods_sample_order_invariance": SAME_INPUT_ROUND_OFF}
  return {}


@pytest.mark.slow
@parametrize_with_checks(ESTIMATORS,
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
  check(estimator)
