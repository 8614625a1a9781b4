"""nt-ode's solvers: what it registers, the `OdeSolver` contract, stiffness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntcore import predict
from ntcore.dynamics import ode
from ntcore.errors import OdeSolverNotInstalledError
from ntcore.registry import providers

import nt_ode
from nt_ode import plugin


def test_registers_the_standard_solvers_with_docs():
  specs = plugin.register_ode_solvers()
  names = [s.name for s in specs]
  # The core's provider table names them in "not installed" messages.
  assert sorted(names) == providers.names_of("ode_solvers", "nt-ode")
  assert ode.DEFAULT_SOLVER in names
  for spec in specs:
    assert isinstance(spec.solver, ode.OdeSolver), spec.name
    assert spec.doc and spec.doc == spec.solver.doc, spec.name


def test_names_resolve_through_the_registry(ode_registry):
  assert ode_registry.ode_solvers.plugins() == ["nt-ode"]
  assert ode.get_solver() is nt_ode.SOLVERS["dopri5"]
  assert ode.get_solver("kvaerno5") is nt_ode.SOLVERS["kvaerno5"]
  assert ode.get_solver("nt-ode:tsit5") is nt_ode.SOLVERS["tsit5"]
  with pytest.raises(OdeSolverNotInstalledError,
                     match=r"'tsit' is not installed(.|\n)*Did you mean tsit5"):
    ode.get_solver("tsit")


def test_unknown_option_raises_before_solving():
  with pytest.raises(TypeError, match="rtoll"):
    nt_ode.SOLVERS["dopri5"](lambda t, y: -y, jnp.ones(2), jnp.arange(2.),
                             rtol=1e-8, atol=1e-8, rtoll=1e-3)


def test_solver_follows_the_protocol():
  # y' = -y on a pytree with an empty (None) subtree, times that start at
  # the initial time and repeat: ys[i] = y0 exp(-(ts[i] - ts[0])). dopri5
  # interpolates between steps; kvaerno5, which lands on every time, runs in
  # the stiff test below.
  solver = nt_ode.SOLVERS["dopri5"]
  y0 = {"a": jnp.array([1., -2.]), "b": None, "c": jnp.array(3.)}
  ts = jnp.array([0.5, 0.5, 1., 2.5])
  fn = lambda t, y: jax.tree.map(jnp.negative, y)
  ys = jax.jit(lambda y, t: solver(fn, y, t, rtol=1e-10, atol=1e-10))(y0, ts)
  decay = np.exp(-(ts - ts[0]))
  assert ys["b"] is None
  np.testing.assert_array_equal(ys["a"][0], y0["a"])
  # Tolerance 1e-10 per step; the global error of this contracting flow
  # stays within a small multiple of it.
  np.testing.assert_allclose(ys["a"], decay[:, None] * y0["a"][None, :],
                             rtol=1e-8)
  np.testing.assert_allclose(ys["c"], decay * 3., rtol=1e-8)


def stiff_problem():
  # MSE on a kernel with eigenvalues 1e4 and 1: an explicit method is held
  # to steps of about 3.3 / 1e4 by stability, an implicit one is not.
  rotation = np.array([[0.6, -0.8], [0.8, 0.6]])
  k = rotation @ np.diag([1e4, 1.]) @ rotation.T
  y = np.array([[1.], [-1.]])
  f0 = np.zeros((2, 1))
  t = np.array([0.01, 1.])
  evals, evecs = np.linalg.eigh(k)
  exact = y + np.einsum("ij,tj,kj,kl->til", evecs,
                        np.exp(-evals * t[:, None]), evecs, f0 - y)
  loss = lambda fx, y_hat: 0.5 * jnp.sum((fx - y_hat) ** 2)
  return loss, k, y, f0, t, exact


def test_implicit_solver_handles_a_stiff_kernel_explicit_runs_out():
  loss, k, y, f0, t, exact = stiff_problem()
  budget = dict(max_steps=500)
  implicit = predict.gradient_descent(loss, k, y, solver="kvaerno5",
                                      solver_options=budget)
  np.testing.assert_allclose(implicit(t, f0), exact, rtol=1e-6, atol=1e-6)
  explicit = predict.gradient_descent(loss, k, y, solver="dopri5",
                                      solver_options=budget)
  # Under jit diffrax's error arrives as a JaxRuntimeError carrying its text.
  with pytest.raises(jax.errors.JaxRuntimeError,
                     match="maximum number of solver steps"):
    explicit(t, f0)
