"""Where nt-dense's kernels and NT's differ, each pinned by the invariance
NT breaks (listed in the README section "Where ntcore differs from NT")."""

import numpy as np
import pytest

from ntcore import stax

rng = np.random.default_rng(11)
X = rng.normal(size=(5, 3))
W_STD, B_STD = 1.3, 0.4


@pytest.mark.parametrize("b_std", [None, B_STD])
def test_sign_full_cov1_is_the_arcsine_kernel(b_std):
  """NT's `Sign` sets every non-zero entry of a full `cov1` to 1, so with
  `diagonal_batch=False` the covariance of `x1` with itself is not its NNGP
  off the diagonal. It must be both the NNGP of `x1` with itself and the
  closed form `(2 / pi) arcsin(rho)` (Sheppard), `rho` the pre-activation
  correlation `c12 / sqrt(q1 q2)` after the Dense layer."""
  net = stax.serial(stax.Dense(16, W_std=W_STD, b_std=b_std), stax.Sign())
  cov1 = net[2](X, X[:2], "cov1", diagonal_batch=False)
  nngp = net[2](X, None, "nngp")
  c = W_STD ** 2 * X @ X.T / X.shape[1] + (0. if b_std is None else b_std ** 2)
  q = np.diag(c)
  closed = (2 / np.pi) * np.arcsin(np.clip(c / np.sqrt(np.outer(q, q)), -1, 1))
  assert cov1.shape == (5, 5)
  off = ~np.eye(5, dtype=bool)
  assert np.all(np.abs(closed[off]) < 0.99)  # NT's 1 would be far off
  np.testing.assert_allclose(cov1, nngp, rtol=1e-13, atol=1e-15)
  np.testing.assert_allclose(cov1, closed, rtol=1e-12, atol=1e-14)
