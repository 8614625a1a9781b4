"""Error paths and numerical robustness of `ntcore.predict`.

Singular or indefinite kernels must raise `SingularKernelError` naming the
fix (diag_reg, float64) instead of returning NaN; shapes and arguments that
do not fit raise `ShapeError` / `PredictArgumentError` /
`KernelRequirementError` with the user's names in the message.
"""

import collections
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntcore import Kernel, predict
from ntcore.errors import (KernelRequirementError, PredictArgumentError,
                           ShapeError, SingularKernelError)

KernelLike = collections.namedtuple("KernelLike", ["nngp", "ntk"])
rng = np.random.default_rng(0)
X = rng.normal(size=(6, 2))
SINGULAR = X @ X.T  # rank 2 of 6: four zero eigenvalues
Y = rng.normal(size=(6, 3))
K_TD = rng.normal(size=(2, 2)) @ X.T  # in the row space, as a PSD joint kernel
F_TEST = np.zeros((2, 3))


def nearly_duplicate_float32(n=40):
  """An RBF kernel on points 1e-3 apart, in float32: singular in float32."""
  x = np.arange(n) * 1e-3
  k = np.exp(-(x[:, None] - x[None, :]) ** 2)
  return k.astype(np.float32), np.exp(-(x[:4, None] + 0.5 - x[None]) ** 2
                                      ).astype(np.float32)


# Singular and indefinite kernels ----------------------------------------------


def test_singular_kernel_at_infinite_time_names_diag_reg_and_float64():
  fn = predict.gradient_descent_mse(SINGULAR, Y)
  for t in (None, np.array([1., np.inf])):
    with pytest.raises(SingularKernelError, match="diag_reg") as info:
      fn(t, 0., F_TEST, K_TD)
    assert "float64" in str(info.value) and "k_train_train" in str(info.value)
    assert "4 of its 6 eigenvalues" in str(info.value)


def test_singular_kernel_is_fine_at_finite_time_and_with_diag_reg():
  f, g = predict.gradient_descent_mse(SINGULAR, Y)(np.array([1., 50.]), 0.,
                                                   F_TEST, K_TD)
  assert np.all(np.isfinite(f)) and np.all(np.isfinite(g))
  g_reg = predict.gradient_descent_mse(SINGULAR, Y, diag_reg=1e-3)(
      None, 0., F_TEST, K_TD)[1]
  reg = SINGULAR + 1e-3 * np.trace(SINGULAR) / 6 * np.eye(6)
  np.testing.assert_allclose(g_reg, K_TD @ np.linalg.solve(reg, Y),
                             rtol=1e-9)
  # Train-only at t=None interpolates without any factorization (as NT).
  np.testing.assert_array_equal(predict.gradient_descent_mse(SINGULAR, Y)(), Y)


def test_gp_inference_and_ensemble_raise_on_singular_kernels():
  fn = predict.gp_inference(KernelLike(SINGULAR, SINGULAR), Y)
  with pytest.raises(SingularKernelError, match="diag_reg"):
    fn("nngp", KernelLike(K_TD, K_TD))
  with pytest.raises(SingularKernelError, match="float64"):
    fn("ntk", KernelLike(K_TD, K_TD), KernelLike(np.eye(2), np.eye(2)))

  def kernel_fn(x1, x2=None, get=None):
    k = x1 @ (x1 if x2 is None else x2).T
    return KernelLike(k, k)

  ens = predict.gradient_descent_mse_ensemble(kernel_fn, X, Y)
  with pytest.raises(SingularKernelError, match="diag_reg"):
    ens(None, X[:2] + 0.1, "ntk")
  assert np.all(np.isfinite(ens(3., X[:2] + 0.1, "ntk", compute_cov=True)
                            .covariance))


def test_indefinite_kernel_raises_at_any_time():
  k = np.diag([2., 1., -0.5])
  fn = predict.gradient_descent_mse(k, Y[:3])
  with pytest.raises(SingularKernelError,
                     match="not positive semi-definite") as info:
    fn(1.0)
  assert "-0.5" in str(info.value) and "diag_reg" in str(info.value)
  advice = float(re.search(r"diag_reg=([0-9.e+-]+) ", str(info.value))[1])
  fixed = predict.gradient_descent_mse(k, Y[:3], diag_reg=advice)
  assert np.all(np.isfinite(fixed(None, 0., np.zeros((1, 3)),
                                  np.ones((1, 3)))[1]))
  with pytest.raises(SingularKernelError, match="diag_reg"):
    predict.gp_inference(k, Y[:3])("nngp", np.ones((1, 3)))


def test_float32_ill_conditioned_kernel_raises_instead_of_nan():
  k, k_td = nearly_duplicate_float32()
  y = np.ones((len(k), 1), np.float32)
  with pytest.raises(SingularKernelError, match="float32") as info:
    predict.gradient_descent_mse(k, y)(None, 0., np.zeros((4, 1)), k_td)
  assert "jax_enable_x64" in str(info.value)
  with pytest.raises(SingularKernelError, match="diag_reg"):
    predict.gp_inference(k, y)("nngp", k_td)
  # Finite times need no inverse: finite values, zero eigenvalues included.
  f, g = predict.gradient_descent_mse(k, y)(np.array([1., 1e4]), 0.,
                                            np.zeros((4, 1)), k_td)
  assert f.dtype == np.float32
  assert np.all(np.isfinite(f)) and np.all(np.isfinite(g))
  # The advised regularizer does work.
  advice = float(re.search(r"diag_reg=([0-9.e+-]+) ", str(info.value))[1])
  g = predict.gradient_descent_mse(k, y, diag_reg=advice)(
      None, 0., np.zeros((4, 1)), k_td)
  assert np.all(np.isfinite(g[1]))


def test_traced_singular_kernel_uses_the_pseudo_inverse():
  # Under one jit around everything the values are unknown: no error, and
  # infinite time drops the null directions instead of returning NaN.
  @jax.jit
  def infinite(k):
    return predict.gradient_descent_mse(k, Y)(None, 0., F_TEST, K_TD)[1]

  pinv = K_TD @ np.linalg.pinv(SINGULAR) @ Y
  np.testing.assert_allclose(infinite(SINGULAR), pinv, rtol=1e-8, atol=1e-10)
  # A jitted predict_fn with traced times: whether t holds inf is unknown
  # when tracing, so t=inf also takes the pseudo-inverse there.
  fn = jax.jit(predict.gradient_descent_mse(SINGULAR, Y))
  got = fn(np.array([1., np.inf]), 0., F_TEST, K_TD)[1]
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(got[1], pinv, rtol=1e-8, atol=1e-10)


# Shapes -----------------------------------------------------------------------


def test_kernel_shape_must_match_y_train_and_trace_axes():
  with pytest.raises(ShapeError, match=r"trace_axes=\(\)") as info:
    predict.gradient_descent_mse(SINGULAR, Y, trace_axes=())
  assert "(6, 6, 3, 3)" in str(info.value)
  with pytest.raises(ShapeError, match="k_train_train has shape"):
    predict.gradient_descent_mse(np.eye(5), Y)
  with pytest.raises(ShapeError, match="k_train_train"):
    predict.gp_inference(np.eye(5), Y)
  with pytest.raises(ShapeError, match=r"trace_axes=\(5,\)"):
    predict.gradient_descent_mse(SINGULAR, Y, trace_axes=(5,))
  with pytest.raises(ShapeError, match="twice"):
    predict.gp_inference(np.eye(6), Y[..., None], trace_axes=(-1, 2))


def test_predict_fn_arguments_must_fit():
  fn = predict.gradient_descent_mse(np.eye(6), Y)
  with pytest.raises(ShapeError, match="k_test_train"):
    fn(1., 0., F_TEST, np.ones((2, 5)))
  with pytest.raises(ShapeError, match="fx_train_0 has shape"):
    fn(1., np.zeros((5, 3)))
  with pytest.raises(ShapeError, match="fx_test_0 has shape"):
    fn(1., 0., np.zeros((3, 3)), K_TD)
  gp = predict.gp_inference(np.eye(6), Y)
  with pytest.raises(ShapeError, match="k_test_test"):
    gp("nngp", K_TD, np.eye(3))
  with pytest.raises(ShapeError, match="ntk_train_train"):
    predict.max_learning_rate(np.ones((2, 3)))


def test_ensemble_checks_kernel_fn_output_against_y_train():
  kernel_fn = lambda x1, x2=None, get=None: KernelLike(np.eye(6), np.eye(6))
  ens = predict.gradient_descent_mse_ensemble(kernel_fn, X, Y, trace_axes=())
  with pytest.raises(ShapeError, match=r"kernel_fn\(x_train, None\)"):
    ens(1., None, "ntk")


# Arguments --------------------------------------------------------------------


def test_missing_or_invalid_arguments_say_what_to_pass():
  fn = predict.gradient_descent_mse(np.eye(6), Y)
  with pytest.raises(PredictArgumentError, match="both None"):
    fn(1., None, None)
  with pytest.raises(PredictArgumentError, match="k_test_train is None"):
    fn(1., 0., F_TEST)
  gp = predict.gp_inference(np.eye(6), Y)
  with pytest.raises(PredictArgumentError, match="'nngp', 'ntk', 'ntkgp'"):
    gp("ntkk", K_TD)
  with pytest.raises(PredictArgumentError, match="distinct"):
    gp(("nngp", "nngp"), K_TD)
  ens = predict.gradient_descent_mse_ensemble(
      lambda x1, x2=None, get=None, **kw: KernelLike(np.eye(6), np.eye(6)),
      X, Y, flag=True)
  with pytest.raises(PredictArgumentError, match="'ntkgp'"):
    ens(1., None, "ntkgp")
  with pytest.raises(PredictArgumentError, match="'flag'"):
    ens(1., X[:2], "ntk", flag=False)


def test_ntk_covariance_needs_both_kernels():
  gp = predict.gp_inference(np.eye(6), Y)
  with pytest.raises(KernelRequirementError, match="nngp and ntk"):
    gp("ntk", K_TD, np.eye(2))
  no_ntk = Kernel(nngp=jnp.eye(6), ntk=None, cov1=None, cov2=None)
  with pytest.raises(KernelRequirementError, match="k_train_train has no ntk"):
    predict.gp_inference(no_ntk, Y)("ntk", K_TD)
