"""Closed-form predictions (`ntcore.predict`) against hand-derived formulas.

Every reference below is written independently of the library: explicit
exponentials of 1x1 and 2x2 kernels, Pade `expm` for the general
matrix exponential, and `numpy.linalg.solve` for GP posteriors. All in
float64, so agreement is to round-off (1e-10 and tighter).
"""

import collections
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from ntcore import Kernel, predict, stax

_spec = importlib.util.spec_from_file_location(
    "fakes", pathlib.Path(__file__).with_name("fakes.py"))
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)

KernelLike = collections.namedtuple("KernelLike", ["nngp", "ntk"])
TOL = dict(rtol=1e-10, atol=1e-12)


def random_problem(n=5, n_test=3, c=2, seed=0):
  """A PSD joint NNGP/NTK over train + test points, targets and outputs."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n + n_test, 4))
  nngp = x @ x.T / 4 + 0.3 + 0.1 * np.eye(n + n_test)
  ntk = 2 * nngp + (x @ x.T / 4) ** 2  # PSD: Schur product of PSD is PSD
  y = rng.normal(size=(n, c))
  split = lambda k: (k[:n, :n], k[n:, :n], k[n:, n:])
  return split(nngp), split(ntk), y, rng


def expm_flow(k, tau):
  """`exp(-k tau)` by Pade approximation, independent of the eigenbasis."""
  return np.asarray(jsl.expm(-k * tau))


# gradient_descent_mse ---------------------------------------------------------


def test_gd_mse_1x1_kernel_is_one_exponential():
  a, b, lr = 2.0, 0.7, 0.5
  y, f0, g0 = np.array([[1.5]]), np.array([[-0.2]]), np.array([[0.3]])
  t = np.array([[0., 0.5], [3., 40.]])
  fn = predict.gradient_descent_mse(np.array([[a]]), y, learning_rate=lr)
  f_t, g_t = fn(t, f0, g0, np.array([[b]]))
  e = np.exp(-lr * a * t)[..., None, None]  # N = y.size = 1
  np.testing.assert_allclose(f_t, y + (f0 - y) * e, **TOL)
  np.testing.assert_allclose(g_t, g0 + b / a * (1 - e) * (y - f0), **TOL)
  assert f_t.shape == g_t.shape == (2, 2, 1, 1)


def test_gd_mse_2x2_kernel_decays_along_its_eigenvectors():
  # [[a, b], [b, a]] has eigenvectors (1, +-1)/sqrt(2), eigenvalues a +- b.
  a, b, lr, t = 3.0, 1.0, 0.8, np.array([0.3, 2.0, 7.0])
  y = np.array([[1., -1., 0.5], [0., 2., 1.]])  # C = 3 logits, N = 6
  f0 = np.array([[0.1, 0.2, 0.3], [-0.4, 0.5, 0.0]])
  r0 = f0 - y
  plus, minus = (r0[0] + r0[1]) / 2, (r0[0] - r0[1]) / 2
  tau = lr * t / 6
  e_p = np.exp(-(a + b) * tau)[:, None]
  e_m = np.exp(-(a - b) * tau)[:, None]
  want = np.stack([plus * e_p + minus * e_m, plus * e_p - minus * e_m], 1)
  fn = predict.gradient_descent_mse(np.array([[a, b], [b, a]]), y, lr)
  np.testing.assert_allclose(fn(t, f0), y + want, **TOL)


def test_t_zero_returns_the_initial_outputs():
  (_, _, _), (k, k_td, _), y, rng = random_problem()
  f0, g0 = rng.normal(size=y.shape), rng.normal(size=(3, 2))
  f, g = predict.gradient_descent_mse(k, y)(0., f0, g0, k_td)
  np.testing.assert_allclose(f, f0, rtol=0, atol=1e-14)
  np.testing.assert_allclose(g, g0, rtol=0, atol=1e-14)


def test_t_inf_equals_t_none_and_large_t_converges_to_it():
  (_, _, _), (k, k_td, _), y, rng = random_problem()
  f0, g0 = rng.normal(size=y.shape), rng.normal(size=(3, 2))
  fn = predict.gradient_descent_mse(k, y, learning_rate=2.)
  f_none, g_none = fn(None, f0, g0, k_td)
  f_t, g_t = fn(np.array([np.inf, 1e7]), f0, g0, k_td)
  np.testing.assert_allclose(f_none, y, rtol=0, atol=0)
  for f, g in zip(f_t, g_t):
    np.testing.assert_allclose(f, f_none, **TOL)
    np.testing.assert_allclose(g, g_none, **TOL)
  # Infinite time: the kernel regression K_* K^{-1} (y - f0) from g0.
  np.testing.assert_allclose(
      g_none, g0 + k_td @ np.linalg.solve(k, y - f0), **TOL)


def test_gd_mse_matches_the_matrix_exponential_with_diag_reg():
  (_, _, _), (k, k_td, _), y, rng = random_problem(seed=3)
  f0, g0, lr, t = rng.normal(size=y.shape), 0., 0.7, 4.
  fn = predict.gradient_descent_mse(k, y, lr, diag_reg=0.1)
  f, g = fn(t, f0, g0, k_td)
  k_reg = k + 0.1 * np.trace(k) / len(k) * np.eye(len(k))
  e = expm_flow(k_reg, lr * t / y.size)
  np.testing.assert_allclose(f, y + e @ (f0 - y), **TOL)
  np.testing.assert_allclose(
      g, g0 - k_td @ np.linalg.solve(k_reg, (np.eye(len(k)) - e) @ (f0 - y)),
      **TOL)


def test_gd_mse_satisfies_the_gradient_flow_ode():
  # d f / dt = -lr / N K (f_train - y), on the train and the test set.
  (_, _, _), (k, k_td, _), y, rng = random_problem(seed=4)
  f0, g0, lr = rng.normal(size=y.shape), rng.normal(size=(3, 2)), 1.3
  fn = predict.gradient_descent_mse(k, y, lr)
  t, h = np.array([0.5, 3.0, 20.0]), 1e-4
  f = np.asarray(fn(t, f0, g0, k_td)[0])
  f_hi, g_hi = fn(t + h, f0, g0, k_td)
  f_lo, g_lo = fn(t - h, f0, g0, k_td)
  rate = lr / y.size
  # Central differences: error O(h^2 |f'''|), far below 1e-7 here.
  np.testing.assert_allclose((f_hi - f_lo) / (2 * h),
                             -rate * np.einsum("ij,tjc->tic", k, f - y),
                             rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose((g_hi - g_lo) / (2 * h),
                             -rate * np.einsum("ij,tjc->tic", k_td, f - y),
                             rtol=1e-7, atol=1e-9)
  # Exact derivative through JAX as well (the guarded `where`s stay finite).
  df = jax.jacfwd(lambda s: fn(s, f0))(2.0)
  np.testing.assert_allclose(df, -rate * k @ (np.asarray(fn(2.0, f0)) - y),
                             **TOL)


def test_t_shape_is_prepended_and_outputs_follow_the_none_convention():
  (_, _, _), (k, k_td, _), y, _ = random_problem()
  fn = predict.gradient_descent_mse(k, y)
  t = np.ones((2, 4))
  assert fn(t).shape == (2, 4, 5, 2)  # fx_train_0 defaults to 0.
  assert fn(t, None, np.zeros((3, 2)), k_td).shape == (2, 4, 3, 2)
  f, g = fn(1., 0., 0., k_td)
  assert f.shape == (5, 2) and g.shape == (3, 2)
  assert fn(None, None, 0., k_td).shape == (3, 2)


def test_block_diagonal_path_equals_trace_axes_empty():
  # K (x) D with D = diag(d): logit c trains with kernel d_c K; with
  # trace_axes=() the solver sees the full (n, n, C, C) kernel.
  (_, _, _), (k, k_td, _), y, rng = random_problem(seed=5)
  d = np.array([1.0, 0.5])
  full = np.einsum("ij,ab->ijab", k, np.diag(d))
  full_td = np.einsum("ij,ab->ijab", k_td, np.diag(d))
  f0, g0, t = rng.normal(size=y.shape), rng.normal(size=(3, 2)), np.array(
      [0.5, 5., np.inf])
  f, g = predict.gradient_descent_mse(full, y, trace_axes=())(t, f0, g0,
                                                              full_td)
  for c in range(2):  # one logit alone: N = n instead of n * C
    fc, gc = predict.gradient_descent_mse(d[c] * k, y[:, c:c + 1], 0.5)(
        t, f0[:, c:c + 1], g0[:, c:c + 1], d[c] * k_td)
    np.testing.assert_allclose(f[..., c:c + 1], fc, **TOL)
    np.testing.assert_allclose(g[..., c:c + 1], gc, **TOL)
  # D = I: the (n, n) kernel with the default trace_axes gives the same.
  eye = np.einsum("ij,ab->ijab", k, np.eye(2))
  eye_td = np.einsum("ij,ab->ijab", k_td, np.eye(2))
  np.testing.assert_allclose(
      predict.gradient_descent_mse(eye, y, trace_axes=())(t, f0, g0, eye_td)[1],
      predict.gradient_descent_mse(k, y)(t, f0, g0, k_td)[1], **TOL)


def test_sample_axes_beyond_the_batch_are_interleaved():
  # y: (n, h, C) with trace_axes=(-1,) -> kernel (n, n, h, h), identical to
  # flattening (n, h) into n * h points.
  rng = np.random.default_rng(6)
  x = rng.normal(size=(6, 3))
  k_flat = x @ x.T + np.eye(6)
  k = k_flat.reshape(3, 2, 3, 2).transpose(0, 2, 1, 3)
  y = rng.normal(size=(3, 2, 4))
  t = np.array([0.3, 2.])
  out = predict.gradient_descent_mse(k, y)(t, 0.)
  flat = predict.gradient_descent_mse(k_flat, y.reshape(6, 4))(t, 0.)
  np.testing.assert_allclose(out, flat.reshape(2, 3, 2, 4), **TOL)


def test_zero_eigenvalues_give_the_exact_limit_not_nan():
  # K = Q diag(lam, 0) Q^T: along the null direction the train outputs stay
  # put and (1 - exp(-0 tau)) / 0 -> tau drives the test outputs.
  lam, b, c, lr = 2.0, 0.6, 0.4, 1.0
  q = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
  k = q @ np.diag([lam, 0.]) @ q.T
  k_td = np.array([[b, c]]) @ q.T
  y, f0 = np.array([[1.], [2.]]), np.array([[0.5], [-1.]])
  r = q.T @ (f0 - y)  # residual in the eigenbasis
  t = np.array([0., 1., 10.])
  f, g = predict.gradient_descent_mse(k, y, lr)(t, f0, 0., k_td)
  tau = lr * t / 2
  assert np.all(np.isfinite(f)) and np.all(np.isfinite(g))
  want_f = y[None, :, 0] + np.einsum(
      "ij,tj->ti", q, np.stack([r[0, 0] * np.exp(-lam * tau),
                                r[1, 0] * np.ones_like(tau)], -1))
  np.testing.assert_allclose(f[..., 0], want_f, atol=1e-14, rtol=1e-12)
  want_g = -(b * (1 - np.exp(-lam * tau)) / lam * r[0, 0] + c * tau * r[1, 0])
  np.testing.assert_allclose(g[:, 0, 0], want_g, atol=1e-14, rtol=1e-12)


def test_predict_fn_jits_and_reuses_one_eigendecomposition(monkeypatch):
  from ntcore.dynamics import _linalg  # pylint: disable=import-outside-toplevel
  calls = []
  real = _linalg._eigh  # pylint: disable=protected-access

  def counting(*args, **kwargs):  # counts decompositions actually computed
    out = real(*args, **kwargs)
    calls.extend([] if isinstance(out[0], jax.core.Tracer) else [1])
    return out

  monkeypatch.setattr(_linalg, "_eigh", counting)
  (_, _, _), (k, k_td, _), y, rng = random_problem(seed=7)
  f0, g0 = rng.normal(size=y.shape), rng.normal(size=(3, 2))
  fn = predict.gradient_descent_mse(k, y, 0.5)
  jitted = jax.jit(fn)
  t = np.array([0.5, 2., np.inf])
  first = jitted(t, f0, g0, k_td)  # the first call, under jit
  for a, b in zip(first, fn(t, f0, g0, k_td)):
    np.testing.assert_allclose(a, b, **TOL)
  fn(None, f0, g0, k_td)
  fn(3., f0)
  assert len(calls) == 1


# gp_inference -----------------------------------------------------------------


def test_gp_inference_equals_the_textbook_posteriors():
  (k, k_td, k_tt), (th, th_td, th_tt), y, _ = random_problem(seed=8)
  fn = predict.gp_inference(KernelLike(k, th), y)
  out = fn(("nngp", "ntk", "ntkgp"), KernelLike(k_td, th_td),
           KernelLike(k_tt, th_tt))
  inv = np.linalg.inv
  np.testing.assert_allclose(out.nngp.mean, k_td @ inv(k) @ y, **TOL)
  np.testing.assert_allclose(out.nngp.covariance,
                             k_tt - k_td @ inv(k) @ k_td.T, **TOL)
  a = th_td @ inv(th)  # eq. 16 of the linearization paper
  np.testing.assert_allclose(out.ntk.mean, a @ y, **TOL)
  np.testing.assert_allclose(
      out.ntk.covariance,
      k_tt + a @ k @ a.T - a @ k_td.T - k_td @ a.T, **TOL)
  np.testing.assert_allclose(out.ntkgp.mean, a @ y, **TOL)
  np.testing.assert_allclose(out.ntkgp.covariance,
                             th_tt - th_td @ inv(th) @ th_td.T, **TOL)
  assert type(out).__name__ == "Gaussians" and out._fields == (
      "nngp", "ntk", "ntkgp")
  assert isinstance(out.ntk, predict.Gaussian)


def test_gp_inference_accepts_kernels_arrays_and_diag_reg():
  (k, k_td, k_tt), (th, th_td, _), y, _ = random_problem(seed=9)
  kern = lambda a, b: Kernel(nngp=jnp.asarray(a), ntk=jnp.asarray(b),
                             cov1=None, cov2=None)
  fn = predict.gp_inference(kern(k, th), y, diag_reg=0.01,
                            diag_reg_absolute_scale=True)
  k_reg = k + 0.01 * np.eye(len(k))
  mean = fn("nngp", kern(k_td, th_td))
  np.testing.assert_allclose(mean, k_td @ np.linalg.solve(k_reg, y), **TOL)
  g = predict.gp_inference(k, y, 0.01, True)("nngp", k_td, k_tt)
  np.testing.assert_allclose(g.mean, mean, **TOL)
  np.testing.assert_allclose(
      g.covariance, k_tt - k_td @ np.linalg.solve(k_reg, k_td.T), **TOL)
  # get=None: both, as a namedtuple.
  both = fn(None, kern(k_td, th_td))
  assert both._fields == ("nngp", "ntk")


def test_gp_inference_train_only_is_y_with_zero_covariance():
  (k, _, _), (th, _, _), y, _ = random_problem()
  fn = predict.gp_inference(KernelLike(k, th), y, diag_reg=1e-3)
  out = fn(("nngp", "ntk"))
  np.testing.assert_array_equal(out.nngp, y)
  np.testing.assert_array_equal(out.ntk, y)
  g = fn("ntk", None, True)
  np.testing.assert_array_equal(g.mean, y)
  assert g.covariance.shape == (5, 5) and not np.any(g.covariance)


def test_gp_inference_factorizes_each_kernel_once(monkeypatch):
  from ntcore.dynamics import _linalg  # pylint: disable=import-outside-toplevel
  calls = []
  real = _linalg._factorize  # pylint: disable=protected-access
  def counting(*args, **kwargs):  # counts factorizations actually computed
    out = real(*args, **kwargs)
    calls.extend([] if isinstance(out[0], jax.core.Tracer) else [1])
    return out

  monkeypatch.setattr(_linalg, "_factorize", counting)
  (k, k_td, k_tt), (th, th_td, th_tt), y, _ = random_problem(seed=10)
  fn = predict.gp_inference(KernelLike(k, th), y)
  jitted = jax.jit(fn, static_argnames="get")(  # first call under jit
      get="ntk", k_test_train=KernelLike(k_td, th_td),
      k_test_test=KernelLike(k_tt, th_tt))
  eager = fn("ntk", KernelLike(k_td, th_td), KernelLike(k_tt, th_tt))
  fn("nngp", KernelLike(k_td, th_td))
  np.testing.assert_allclose(jitted.covariance, eager.covariance, **TOL)
  assert len(calls) == 2  # ntk and nngp, once each


# gradient_descent_mse_ensemble ------------------------------------------------


def kernel_fn_of(k_all, n_train):
  """A kernel_fn over index inputs into a fixed joint kernel pair."""
  nngp_all, ntk_all = k_all

  def kernel_fn(x1, x2=None, get=None, scale=1.):
    i = np.asarray(x1).astype(int)[:, 0]
    j = i if x2 is None else np.asarray(x2).astype(int)[:, 0]
    out = KernelLike(scale * nngp_all[np.ix_(i, j)],
                     scale * ntk_all[np.ix_(i, j)])
    return out if not isinstance(get, str) else getattr(out, get)

  x_train = np.arange(n_train)[:, None].astype(float)
  x_test = np.arange(n_train, len(nngp_all))[:, None].astype(float)
  return kernel_fn, x_train, x_test


def joint(seed=11):
  (k, k_td, k_tt), (th, th_td, th_tt), y, rng = random_problem(seed=seed)
  block = lambda a, b, c: np.block([[a, b.T], [b, c]])
  return (block(k, k_td, k_tt), block(th, th_td, th_tt)), y, rng


def test_ensemble_mean_equals_gradient_descent_mse_on_the_same_kernels():
  k_all, y, _ = joint()
  kernel_fn, x_train, x_test = kernel_fn_of(k_all, 5)
  t, lr = np.array([0.5, 3., 30.]), 0.9
  fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y, lr)
  for g, k in zip(("nngp", "ntk"), k_all):
    gd = predict.gradient_descent_mse(k[:5, :5], y, lr)
    f, f_test = gd(t, 0., 0., k[5:, :5])
    np.testing.assert_allclose(fn(t, x_test, g), f_test, **TOL)
    np.testing.assert_allclose(fn(t, None, g), f, **TOL)


def test_ensemble_covariance_is_eq_15_symmetric_psd_and_starts_at_the_prior():
  (k_all, th_all), y, _ = joint(seed=12)
  kernel_fn, x_train, x_test = kernel_fn_of((k_all, th_all), 5)
  lr, t = 1.5, np.array([0., 0.7, 6.])
  out = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y, lr)(
      t, x_test, ("nngp", "ntk"), compute_cov=True)
  k, k_td, k_tt = k_all[:5, :5], k_all[5:, :5], k_all[5:, 5:]
  th, th_td = th_all[:5, :5], th_all[5:, :5]
  for i, ti in enumerate(t):
    # f_test(t) = f_test(0) - A (f_train(0) - y): an affine map of the prior.
    for name, kern, kern_td in (("ntk", th, th_td), ("nngp", k, k_td)):
      e = expm_flow(kern, lr * ti / y.size)
      a = kern_td @ np.linalg.solve(kern, np.eye(5) - e)
      cov = k_tt - a @ k_td.T - k_td @ a.T + a @ k @ a.T
      got = getattr(out, name)
      np.testing.assert_allclose(got.covariance[i], cov, **TOL)
      np.testing.assert_allclose(got.mean[i], a @ y, **TOL)
      np.testing.assert_allclose(got.covariance[i], got.covariance[i].T,
                                 rtol=0, atol=1e-14)
      assert np.linalg.eigvalsh(got.covariance[i]).min() > -1e-12
  np.testing.assert_allclose(out.ntk.covariance[0], k_tt, **TOL)


def test_ensemble_shrinks_to_the_gp_posterior_at_infinite_time():
  (k_all, th_all), y, _ = joint(seed=13)
  kernel_fn, x_train, x_test = kernel_fn_of((k_all, th_all), 5)
  fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y)
  post = predict.gp_inference(KernelLike(k_all[:5, :5], th_all[:5, :5]), y)(
      None, KernelLike(k_all[5:, :5], th_all[5:, :5]), KernelLike(
          k_all[5:, 5:], th_all[5:, 5:]))
  at_none = fn(None, x_test, None, compute_cov=True)
  late = fn(np.array([1e3, np.inf]), x_test, None, compute_cov=True)
  for g in ("nngp", "ntk"):
    for got in (getattr(at_none, g), jax.tree.map(lambda v: v[1],
                                                  getattr(late, g))):
      np.testing.assert_allclose(got.mean, getattr(post, g).mean, **TOL)
      np.testing.assert_allclose(got.covariance, getattr(post, g).covariance,
                                 **TOL)
    # Variances only shrink as training goes on (t = 1e3 is not yet inf).
    assert np.all(np.diag(getattr(late, g).covariance[0]) >=
                  np.diag(getattr(at_none, g).covariance) - 1e-10)


def test_ensemble_on_the_training_set():
  (k_all, th_all), y, _ = joint(seed=14)
  kernel_fn, x_train, _ = kernel_fn_of((k_all, th_all), 5)
  fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y, 0.5)
  out = fn(np.array([2.]), None, "ntk", compute_cov=True)
  e = expm_flow(th_all[:5, :5], 0.5 * 2. / y.size)
  np.testing.assert_allclose(out.mean[0], (np.eye(5) - e) @ y, **TOL)
  np.testing.assert_allclose(out.covariance[0], e @ k_all[:5, :5] @ e, **TOL)
  at_none = fn(None, None, "ntk", compute_cov=True)
  np.testing.assert_array_equal(at_none.mean, y)
  assert at_none.covariance.shape == (5, 5) and not np.any(at_none.covariance)


def test_ensemble_passes_kernel_fn_keywords_and_test_overrides():
  (k_all, th_all), y, _ = joint(seed=15)
  kernel_fn, x_train, x_test = kernel_fn_of((k_all, th_all), 5)
  fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y,
                                             scale=2.)
  mean = fn(None, x_test, "nngp")
  # Scaling every kernel by 2 leaves K_* K^{-1} y unchanged ...
  np.testing.assert_allclose(
      mean, k_all[5:, :5] @ np.linalg.solve(k_all[:5, :5], y), **TOL)
  # ... but the prior covariance follows the keyword.
  cov = fn(None, x_test, "nngp", compute_cov=True).covariance
  k = k_all
  np.testing.assert_allclose(
      cov, 2 * (k[5:, 5:] - k[5:, :5] @ np.linalg.solve(k[:5, :5], k[:5, 5:])),
      **TOL)


def test_ensemble_with_a_core_kernel_fn_under_jit():
  _, _, kernel_fn = stax.serial(fakes.linear(8), fakes.square(),
                                fakes.linear(1))
  rng = np.random.default_rng(16)
  x_train, x_test = rng.normal(size=(6, 3)), rng.normal(size=(2, 3))
  y = rng.normal(size=(6, 2))
  fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y,
                                             diag_reg=1e-4)
  t = np.array([1., 10.])
  jitted = jax.jit(fn, static_argnames=("get", "compute_cov"))(  # first call
      t, x_test, get="ntk", compute_cov=True)
  eager = fn(t, x_test, "ntk", compute_cov=True)
  assert eager.mean.shape == (2, 2, 2) and eager.covariance.shape == (2, 2, 2)
  np.testing.assert_allclose(jitted.mean, eager.mean, **TOL)
  np.testing.assert_allclose(jitted.covariance, eager.covariance, **TOL)
  k = kernel_fn(x_train, None, ("nngp", "ntk"))
  k_td = kernel_fn(x_test, x_train, "ntk")
  _, f_test = predict.gradient_descent_mse(k.ntk, y, diag_reg=1e-4)(
      t, 0., 0., k_td)
  np.testing.assert_allclose(eager.mean, f_test, **TOL)


# max_learning_rate ------------------------------------------------------------


def test_max_learning_rate_is_the_contraction_threshold():
  (_, _, _), (k, _, _), _, _ = random_problem(seed=17)
  lam_max = np.linalg.eigvalsh(k)[-1]
  n_out = 10
  lr = float(predict.max_learning_rate(k, y_train_size=n_out))
  np.testing.assert_allclose(lr, 2 * n_out / lam_max, rtol=1e-12)
  radius = lambda eta: np.abs(np.linalg.eigvalsh(
      np.eye(5) - eta / n_out * k)).max()
  assert radius(0.99 * lr) < 1 < radius(1.01 * lr)
  np.testing.assert_allclose(
      predict.max_learning_rate(k, momentum=0.5), 3 * 5 / lam_max,
      rtol=1e-12)
