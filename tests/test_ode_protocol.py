"""The `OdeSolver` protocol and how `gradient_descent` finds and drives one.

Core tests: the solver is a fake defined here (classical RK4 with fixed
substeps, registered by a fake plugin), never nt-ode.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ntcore import registry
from ntcore.dynamics import ode
from ntcore.errors import (LayerNameClashError, OdeSolverNotInstalledError,
                           PredictArgumentError)
from ntcore.registry import OdeSolverSpec, hookimpl

# RK4 with 64 substeps per interval: the error is O((lambda h)^4) with
# lambda h <= 0.1 here, about 1e-7 at worst; 1e-6 is ten times that.
TOL = 1e-6


def rk4(fn, y0, ts, *, rtol, atol, substeps=64):
  """Classical Runge-Kutta 4, fixed steps; ignores rtol and atol."""
  del rtol, atol

  def axpy(y, k, a):
    return jax.tree.map(lambda u, v: u + a * v, y, k)

  def step(i, carry):
    y, t0, h = carry
    t = t0 + i * h
    k1 = fn(t, y)
    k2 = fn(t + h / 2, axpy(y, k1, h / 2))
    k3 = fn(t + h / 2, axpy(y, k2, h / 2))
    k4 = fn(t + h, axpy(y, k3, h))
    y = jax.tree.map(lambda u, a, b, c, d: u + h / 6 * (a + 2 * b + 2 * c + d),
                     y, k1, k2, k3, k4)
    return y, t0, h

  def interval(y, t_pair):
    t0, t1 = t_pair
    y, _, _ = lax.fori_loop(0, substeps, step, (y, t0, (t1 - t0) / substeps))
    return y, y

  _, ys = lax.scan(interval, y0, (ts[:-1], ts[1:]))
  return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), y0, ys)


class Recorder:
  """An `OdeSolver` that records each call's arguments, then runs RK4.

  It runs under jit, so the values of `ts` arrive through a callback.
  """

  def __init__(self):
    self.calls = []

  def __call__(self, fn, y0, ts, *, rtol, atol, **options):
    call = dict(rtol=rtol, atol=atol, options=options)
    self.calls.append(call)
    jax.debug.callback(lambda v: call.update(ts=np.asarray(v)), ts)
    return rk4(fn, y0, ts, rtol=rtol, atol=atol, **options)


def solver_plugin(name, **solvers):
  """A module-like plugin `name` registering `solvers` (name -> OdeSolver)."""
  plugin = types.ModuleType(name)

  @hookimpl
  def register_ode_solvers():
    return [OdeSolverSpec(n, s) for n, s in solvers.items()]

  plugin.register_ode_solvers = register_ode_solvers
  return plugin


def mse(fx, y_hat):
  return 0.5 * jnp.sum((fx - y_hat) ** 2)


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(6, 8))
  joint = x @ x.T / 8
  return dict(k_tt=joint[:4, :4], k_st=joint[4:, :4],
              y=rng.normal(size=(4, 3)), f0=rng.normal(size=(4, 3)),
              g0=rng.normal(size=(2, 3)))


def closed_form(d, s):
  """`mse` gradient flow: f - y = e^{-Ks}(f0 - y) and the test outputs
  f_test = g0 - K_st K^-1 (I - e^{-Ks}) (f0 - y); `s` a scalar time."""
  evals, evecs = np.linalg.eigh(d["k_tt"])
  decay = evecs @ np.diag(np.exp(-evals * s)) @ evecs.T
  gain = evecs @ np.diag((1 - np.exp(-evals * s)) / evals) @ evecs.T
  residual = d["f0"] - d["y"]
  return d["y"] + decay @ residual, d["g0"] - d["k_st"] @ gain @ residual


def test_fake_solver_satisfies_the_protocol():
  assert isinstance(rk4, ode.OdeSolver)
  assert isinstance(Recorder(), ode.OdeSolver)
  assert not isinstance("dopri5", ode.OdeSolver)


def test_no_solver_installed_raises_with_install_line(data):
  previous = registry.use_registry(registry.Registry(registry.new_manager()))
  try:
    with pytest.raises(OdeSolverNotInstalledError) as info:
      ode.gradient_descent(mse, data["k_tt"], data["y"])
  finally:
    registry.use_registry(previous)
  message = str(info.value)
  assert f"{ode.DEFAULT_SOLVER!r} (the default) is not installed" in message
  assert "Installed ODE solvers: none." in message
  assert "pip install -e plugins/nt_ode" in message


def test_default_name_is_used_and_tolerances_forwarded(use_plugins, data):
  default, other = Recorder(), Recorder()
  use_plugins(solver_plugin("fake-ode", **{ode.DEFAULT_SOLVER: default,
                                           "rk4": other}))
  predict_fn = ode.gradient_descent(mse, data["k_tt"], data["y"],
                                    learning_rate=0.5)
  predict_fn(np.array([0., 2.]), data["f0"])
  assert len(default.calls) == 1 and not other.calls
  call = default.calls[0]
  assert call["rtol"] == ode.RTOL and call["atol"] == ode.ATOL
  # The initial time 0 comes first; t is in units of the learning rate.
  np.testing.assert_array_equal(call["ts"], [0., 0., 1.])

  ode.gradient_descent(mse, data["k_tt"], data["y"], solver="rk4", rtol=1e-3,
                       atol=1e-4, solver_options=dict(substeps=8))(
                           1., data["f0"])
  assert len(default.calls) == 1 and len(other.calls) == 1
  assert other.calls[0]["rtol"] == 1e-3 and other.calls[0]["atol"] == 1e-4
  assert other.calls[0]["options"] == dict(substeps=8)


def test_unknown_solver_lists_installed_ones_and_suggests(use_plugins, data):
  use_plugins(solver_plugin("fake-ode", rk4=rk4))
  with pytest.raises(OdeSolverNotInstalledError,
                     match=r"'rk5' is not installed\.\n  Installed ODE "
                           r"solvers: fake-ode \(rk4\)\. Did you mean rk4\?"
                           r"(.|\n)*pip install -e plugins/nt_ode"):
    ode.gradient_descent(mse, data["k_tt"], data["y"], solver="rk5")


def test_two_plugins_one_name_must_be_qualified(use_plugins, data):
  a, b = Recorder(), Recorder()
  use_plugins(solver_plugin("fake-a", rk4=a), solver_plugin("fake-b", rk4=b))
  with pytest.raises(LayerNameClashError, match="fake-a and fake-b"):
    ode.gradient_descent(mse, data["k_tt"], data["y"], solver="rk4")
  ode.gradient_descent(mse, data["k_tt"], data["y"], solver="fake-b:rk4")(
      1., data["f0"])
  assert len(b.calls) == 1 and not a.calls


def test_solver_object_needs_no_registry_and_matches_closed_form(
    use_plugins, data):
  use_plugins()  # nothing installed: the object is used as given
  predict_fn = ode.gradient_descent(mse, data["k_tt"], data["y"],
                                    learning_rate=2., solver=rk4)
  t = np.array([[0.25], [1.5]])
  fx_train, fx_test = predict_fn(t, data["f0"], data["g0"], data["k_st"])
  assert fx_train.shape == (2, 1, 4, 3) and fx_test.shape == (2, 1, 2, 3)
  for i, s in enumerate(2. * t[:, 0]):
    want_train, want_test = closed_form(data, s)
    np.testing.assert_allclose(fx_train[i, 0], want_train, atol=TOL)
    np.testing.assert_allclose(fx_test[i, 0], want_test, atol=TOL)


def test_returns_follow_nt(data):
  predict_fn = ode.gradient_descent(mse, data["k_tt"], data["y"], solver=rk4)
  want_train, want_test = closed_form(data, 1.)
  train = predict_fn(1., data["f0"])
  assert train.shape == (4, 3)  # a scalar t adds no axis
  np.testing.assert_allclose(train, want_train, atol=TOL)
  # fx_train_0=None: only test outputs, the train ones evolving from 0.
  test_only = predict_fn(1., None, data["g0"], data["k_st"])
  _, want_from_zero = closed_form(dict(data, f0=np.zeros((4, 3))), 1.)
  np.testing.assert_allclose(test_only, want_from_zero, atol=TOL)
  # A scalar 0. broadcasts to y_train's shape.
  np.testing.assert_allclose(predict_fn(1.), closed_form(
      dict(data, f0=np.zeros((4, 3))), 1.)[0], atol=TOL)
  state = predict_fn(1., ode.ODEState(data["f0"], data["g0"]), None,
                     data["k_st"])
  assert isinstance(state, ode.ODEState) and state.qx_train is None
  np.testing.assert_allclose(state.fx_test, want_test, atol=TOL)


def test_trace_axes_empty_takes_the_full_kernel(data):
  # K (x) I over the output axis with trace_axes=() is the default K; NT's
  # layout zips the axes of the two outputs: (n1, n2, k1, k2).
  eye = np.eye(3)
  full_tt = np.einsum("ij,ab->ijab", data["k_tt"], eye)
  full_st = np.einsum("ij,ab->ijab", data["k_st"], eye)
  full = ode.gradient_descent(mse, full_tt, data["y"], trace_axes=(),
                              solver=rk4)
  got_train, got_test = full(0.8, data["f0"], data["g0"], full_st)
  want_train, want_test = closed_form(data, 0.8)
  np.testing.assert_allclose(got_train, want_train, atol=TOL)
  np.testing.assert_allclose(got_test, want_test, atol=TOL)


def test_trace_axis_leading(data):
  # Outputs (k, n) with trace_axes=(0,): the kernel acts on the last axis.
  predict_fn = ode.gradient_descent(mse, data["k_tt"], data["y"].T,
                                    trace_axes=0, solver=rk4)
  got_train, got_test = predict_fn(0.8, data["f0"].T, data["g0"].T,
                                   data["k_st"])
  want_train, want_test = closed_form(data, 0.8)
  np.testing.assert_allclose(got_train, want_train.T, atol=TOL)
  np.testing.assert_allclose(got_test, want_test.T, atol=TOL)


@pytest.mark.parametrize("t, args, match", [
    (None, (0.,), "t=None"),
    (np.array([1., np.inf]), (0.,), "t=inf"),
    (np.array([2., 1.]), (0.,), "non-decreasing"),
    (-1., (0.,), "non-negative"),
    (1., (None, None), "nothing to predict"),
    (1., (0., np.zeros((2, 3))), "k_test_train"),
    (1., (ode.ODEState(np.zeros((4, 3))), np.zeros((2, 3)), np.eye(2, 4)),
     "fx_test_0 must be None"),
    (1., (ode.ODEState(np.zeros((4, 3)), None, np.zeros((4, 3))),),
     "momentum=None"),
])
def test_bad_arguments_raise_before_solving(data, t, args, match):
  calls = Recorder()
  predict_fn = ode.gradient_descent(mse, data["k_tt"], data["y"],
                                    solver=calls)
  with pytest.raises(PredictArgumentError, match=match):
    predict_fn(t, *args)
  assert not calls.calls


def test_solver_name_of_wrong_type_is_a_type_error(data):
  with pytest.raises(TypeError, match="solver name or an OdeSolver"):
    ode.gradient_descent(mse, data["k_tt"], data["y"], solver=5)
