"""`solver="cg"`: preconditioned conjugate gradients against the dense path.

The kernels are those of a one-hidden-layer ReLU network, written out here
(arc-cosine kernels, Cho & Saul 2009) on random inputs: their spectrum
decays slowly, as real NNGP/NTK spectra do, so CG needs a preconditioner.
Dense references are `numpy.linalg.solve` and the library's own Cholesky /
eigh paths; agreement is asked to 1e-6 relative (the CG tolerance is
1e-10 on the residual, and the condition numbers here are below 1e4 / 1e-4
relative regularizers).
"""

import collections

import numpy as np
import pytest

from ntcore import predict
from ntcore.errors import PredictArgumentError

KernelLike = collections.namedtuple("KernelLike", ["nngp", "ntk"])
RTOL = 1e-6


def relu_kernels(x):
  """NNGP and NTK of Dense-Relu-Dense (W_std=1, b_std=0.3) on rows of `x`."""
  s = x @ x.T / x.shape[1] + 0.09
  norm = np.sqrt(np.outer(np.diag(s), np.diag(s)))
  c = np.clip(s / norm, -1., 1.)
  theta = np.arccos(c)
  nngp = norm * (np.sin(theta) + (np.pi - theta) * c) / (2 * np.pi) + 0.09
  ntk = nngp + s * (np.pi - theta) / (2 * np.pi)
  return nngp, ntk


@pytest.fixture(scope="module")
def problem():
  """Train 400 / test 30 points, 3 targets; kernels of the joint set."""
  rng = np.random.default_rng(0)
  n, n_test = 400, 30
  nngp, ntk = relu_kernels(rng.standard_normal((n + n_test, 8)))
  split = lambda k: (k[:n, :n], k[n:, :n], k[n:, n:])
  y = rng.standard_normal((n, 3))
  return split(nngp), split(ntk), y


def rel(a, b):
  a, b = np.asarray(a), np.asarray(b)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("diag_reg", [1e-2, 1e-3, 1e-4])
def test_gp_inference_cg_equals_cholesky(problem, diag_reg):
  (k, k_td, k_tt), (th, th_td, th_tt), y = problem
  train, td, tt = KernelLike(k, th), KernelLike(k_td, th_td), KernelLike(
      k_tt, th_tt)
  get = ("nngp", "ntk", "ntkgp")
  dense = predict.gp_inference(train, y, diag_reg)(get, td, tt)
  cg_fn = predict.gp_inference(train, y, diag_reg, solver="cg")
  cg = cg_fn(get, td, tt)
  for g in get:
    assert rel(getattr(cg, g).mean, getattr(dense, g).mean) <= RTOL
    assert rel(getattr(cg, g).covariance, getattr(dense, g).covariance) <= RTOL
  # Against the textbook formula too, not only the library's other path.
  reg = diag_reg * np.trace(k) / len(k)
  mean = k_td @ np.linalg.solve(k + reg * np.eye(len(k)), y)
  assert rel(cg.nngp.mean, mean) <= RTOL
  records = cg_fn.cg_records
  assert {r.what for r in records} >= {"nngp: K^-1 y_train",
                                       "ntk: K^-1 y_train"}
  for r in records:
    assert r.iterations >= 1 and np.all(r.residual <= 1e-10)
    assert len(r.history) == r.iterations


@pytest.mark.parametrize("targets", [1, 7])
def test_one_and_many_targets_share_one_solve(problem, targets):
  (_, _, _), (th, th_td, _), _ = problem
  y = np.random.default_rng(targets).standard_normal((len(th), targets))
  fn = predict.gp_inference(th, y, 1e-3, solver="cg")
  out = fn("ntk", th_td)
  dense = predict.gp_inference(th, y, 1e-3)("ntk", th_td)
  assert out.shape == (len(th_td), targets)
  assert rel(out, dense) <= RTOL
  (record,) = fn.cg_records
  assert record.residual.shape == (targets,)


def test_absolute_diag_reg_and_float32_kernels_accumulate_in_float64(problem):
  (k, k_td, _), _, y = problem
  k32, k_td32 = k.astype(np.float32), k_td.astype(np.float32)
  fn = predict.gp_inference(k32, y, 0.05, diag_reg_absolute_scale=True,
                            solver="cg")
  out = fn("nngp", k_td32)
  # The exact solution of the float32 kernel's system, computed in float64.
  exact = k_td32.astype(float) @ np.linalg.solve(
      k32.astype(float) + 0.05 * np.eye(len(k)), y)
  assert out.dtype == np.float32
  # float32 output: round-off of the result only, not of the solve.
  assert rel(out, exact) <= 1e-6
  assert np.all(fn.cg_records[0].residual <= 1e-10)


@pytest.mark.parametrize("diag_reg", [1e-2, 1e-4])
def test_gradient_descent_mse_at_infinity(problem, diag_reg):
  _, (th, th_td, _), y = problem
  rng = np.random.default_rng(1)
  f0, g0 = rng.standard_normal(y.shape), rng.standard_normal((30, 3))
  dense = predict.gradient_descent_mse(th, y, diag_reg=diag_reg)
  cg = predict.gradient_descent_mse(th, y, diag_reg=diag_reg, solver="cg")
  for t in (None, np.inf, np.full((2,), np.inf)):
    f_d, g_d = dense(t, f0, g0, th_td)
    f_c, g_c = cg(t, f0, g0, th_td)
    assert f_c.shape == f_d.shape and g_c.shape == g_d.shape
    assert rel(f_c, f_d) <= RTOL and rel(g_c, g_d) <= RTOL
  # fx_train_0 = 0 skips the second solve; the test outputs alone.
  n_solves = len(cg.cg_records)
  assert rel(cg(None, 0., g0, th_td)[1], dense(None, 0., g0, th_td)[1]) <= RTOL
  assert rel(cg(None, None, g0, th_td), dense(None, None, g0, th_td)) <= RTOL
  assert len(cg.cg_records) == n_solves
  with pytest.raises(PredictArgumentError, match="finite times"):
    cg(1., f0, g0, th_td)


def kernel_fn_of(problem):
  """A kernel_fn over index inputs into the joint kernels of `problem`."""
  (k, k_td, k_tt), (th, th_td, th_tt), y = problem
  block = lambda a, b, c: np.block([[a, b.T], [b, c]])
  nngp, ntk = block(k, k_td, k_tt), block(th, th_td, th_tt)

  def kernel_fn(x1, x2=None, get=None):
    i = np.asarray(x1).astype(int)[:, 0]
    j = i if x2 is None else np.asarray(x2).astype(int)[:, 0]
    out = KernelLike(nngp[np.ix_(i, j)], ntk[np.ix_(i, j)])
    return out if not isinstance(get, str) else getattr(out, get)

  n = len(y)
  return (kernel_fn, np.arange(n)[:, None].astype(float),
          np.arange(n, len(nngp))[:, None].astype(float), y)


def test_ensemble_at_infinity(problem):
  kernel_fn, x_train, x_test, y = kernel_fn_of(problem)
  dense = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y,
                                                diag_reg=1e-3)
  cg = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y,
                                             diag_reg=1e-3, solver="cg")
  for t in (None, np.inf):
    d = dense(t, x_test, ("nngp", "ntk"), compute_cov=True)
    c = cg(t, x_test, ("nngp", "ntk"), compute_cov=True)
    for g in ("nngp", "ntk"):
      assert rel(getattr(c, g).mean, getattr(d, g).mean) <= RTOL
      assert rel(getattr(c, g).covariance, getattr(d, g).covariance) <= RTOL
  on_train = cg(np.inf, None, "ntk", compute_cov=True)
  np.testing.assert_allclose(on_train.mean, y)
  assert not np.any(on_train.covariance)
  assert cg.cg_records and all(np.all(r.residual <= 1e-10)
                               for r in cg.cg_records)
  with pytest.raises(PredictArgumentError, match="finite times"):
    cg(10., x_test, "ntk")


def test_default_and_auto_keep_the_dense_results(problem):
  _, (th, th_td, _), y = problem
  base = predict.gp_inference(th, y, 1e-3)("ntk", th_td)
  for solver in (None, "dense", "auto"):  # 400 rows < AUTO_CG_SIZE
    fn = predict.gp_inference(th, y, 1e-3, solver=solver)
    np.testing.assert_array_equal(fn("ntk", th_td), base)
    assert fn.cg_records == []
  assert predict.AUTO_CG_SIZE > len(th)


def test_the_preconditioner_cuts_the_iteration_count(problem):
  _, (th, th_td, _), y = problem
  counts = {}
  for rank in (0, 16, 128):
    fn = predict.gp_inference(th, y, 1e-4, solver=predict.CG(rank=rank))
    fn("ntk", th_td)
    (record,) = fn.cg_records
    assert record.rank == rank
    counts[rank] = record.iterations
  # Measured: 0 -> 201, 16 -> 131, 128 -> 39 iterations.
  assert counts[16] < counts[0] * 0.8
  assert counts[128] < counts[0] / 4


def test_rank_chosen_from_the_kernel_stops_below_the_cap(problem):
  _, (th, _, _), y = problem
  # A large regularizer leaves few directions above it: a low rank; a
  # smaller one needs more (both below the cap, min(P, AUTO_RANK) = 400).
  ranks = []
  for diag_reg in (0.5, 0.1):
    fn = predict.gp_inference(th, y, diag_reg, solver="cg")
    fn("ntk", th[:5])
    ranks.append(fn.cg_records[0].rank)
  assert 0 < ranks[0] < ranks[1] < len(th)


def test_non_convergence_names_the_remedies(problem):
  _, (th, th_td, _), y = problem
  fn = predict.gp_inference(th, y, 1e-6, solver=predict.CG(rank=0, maxiter=5))
  with pytest.raises(predict.CGConvergenceError,
                     match=r"diag_reg.*rank.*maxiter") as e:
    fn("ntk", th_td)
  assert isinstance(e.value, ArithmeticError)
  assert "after 5 iterations" in str(e.value)
  assert fn.cg_records[0].iterations == 5


def test_an_indefinite_kernel_breaks_down_with_a_message(problem):
  _, (th, th_td, _), y = problem
  bad = th - 2 * np.max(np.linalg.eigvalsh(th)) * np.eye(len(th))
  fn = predict.gp_inference(bad, y, solver=predict.CG(rank=0))
  with pytest.raises(predict.CGConvergenceError, match="not positive definite"):
    fn("ntk", th_td)


@pytest.mark.parametrize("bad", ["lu", predict.CG])
def test_bad_solver_arguments(problem, bad):
  _, (th, _, _), y = problem
  with pytest.raises(ValueError, match="solver=|CG\\("):
    if bad == "lu":
      predict.gp_inference(th, y, solver=bad)
    else:
      bad(tol=2.)


def test_cg_mean_under_jit(problem):
  import jax  # pylint: disable=import-outside-toplevel
  _, (th, th_td, th_tt), y = problem
  fn = predict.gp_inference(th, y, 1e-3, solver="cg")
  jitted = jax.jit(fn, static_argnums=0)
  assert rel(jitted("ntk", th_td), fn("ntk", th_td)) <= 1e-12
  with pytest.raises(PredictArgumentError, match="traced"):
    jax.jit(fn, static_argnums=0)("ntkgp", th_td, th_tt)


def test_cg_needs_a_concrete_training_kernel(problem):
  import jax  # pylint: disable=import-outside-toplevel
  _, (th, th_td, _), y = problem

  def whole(k):
    return predict.gp_inference(k, y, 1e-3, solver="cg")("ntk", th_td)

  with pytest.raises(PredictArgumentError, match="traced.*solver='dense'"):
    jax.jit(whole)(th)
