"""Tests of `Step`: closed form, conformance suite, Monte Carlo, registration."""

import importlib.metadata

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import ntcore
from ntcore import Kernel, KernelRequirementError, registry, stax, testing

import nt_step
from nt_step import Step


def _rule(q1, q2, c, a=1.):
  """Step's rule on a hand-made Gaussian kernel: `nngp[i, j]` from `c[i, j]`."""
  k = Kernel(nngp=jnp.asarray(c), ntk=jnp.ones_like(c), cov1=jnp.asarray(q1),
             cov2=jnp.asarray(q2), is_gaussian=True, diagonal_batch=True,
             shape1=(len(q1), 1), shape2=(len(q2), 1))
  return Step(a).kernel_fn(k)


def _orthant(q1, q2, c):
  """E[1(u > 0) 1(v > 0)] by direct integration, independent of the closed form.

  With `u = sqrt(q1) z1`, `v = sqrt(q2) (rho z1 + sqrt(1 - rho^2) z2)`,
  `P(u > 0, v > 0) = int_0^inf pdf(z) Phi(rho z / sqrt(1 - rho^2)) dz`.
  """
  rho = c / np.sqrt(q1 * q2)
  s = rho / np.sqrt(1 - rho ** 2)
  value, err = integrate.quad(
      lambda z: np.exp(-z ** 2 / 2) / np.sqrt(2 * np.pi) * special.ndtr(s * z),
      0, np.inf, epsabs=1e-15, epsrel=1e-13)
  assert err < 1e-13
  return value


@pytest.mark.parametrize("a", [1., 0.5, 3.])
def test_closed_form_matches_integration(a):
  rng = np.random.RandomState(0)
  q1 = np.array([0.3, 1., 2.5])
  q2 = np.array([0.7, 1., 4., 1e-3])
  rho = rng.uniform(-0.999, 0.999, (3, 4))
  rho[0, :3] = [-0.99999, 0., 0.99999]
  c = rho * np.sqrt(q1[:, None] * q2[None, :])
  out = _rule(q1, q2, c, a)
  want = np.vectorize(_orthant)(q1[:, None], q2[None, :], c) * a ** 2
  # Float64 round-off on both sides: quad's error bound is < 1e-13 (they
  # agree to ~3e-16 absolute), the closed form is good to a few ulps (no rho
  # here is in the 64-ulp band around +-1 that the rule snaps).
  np.testing.assert_allclose(out.nngp, want, rtol=1e-12, atol=1e-15 * a ** 2)
  np.testing.assert_array_equal(out.cov1, a ** 2 / 2)
  np.testing.assert_array_equal(out.cov2, a ** 2 / 2)
  np.testing.assert_array_equal(out.ntk, 0.)
  assert not out.is_gaussian


def test_closed_form_limits():
  # Columns: parallel, antiparallel, orthogonal, then a zero-norm x2.
  q1 = np.array([2., 0.])
  q2 = np.array([8., 0.5, 3., 0.])
  c = np.array([[4., -1., 0., 0.], [0., 0., 0., 0.]])
  out = _rule(q1, q2, c, a=2.)
  np.testing.assert_array_equal(out.nngp, [[2., 0., 1., 0.], [0., 0., 0., 0.]])
  np.testing.assert_array_equal(out.cov1, [2., 0.])
  np.testing.assert_array_equal(out.cov2, [2., 2., 2., 0.])


def test_finite_layer():
  init_fn, apply_fn, _ = Step(a=2.5)
  x = jnp.array([[-1., 0., 1e-300, 3.]], jnp.float32)
  shape, params = init_fn(jax.random.PRNGKey(0), x.shape)
  assert shape == x.shape and params == ()
  y = apply_fn(params, x)
  assert y.dtype == jnp.float32
  np.testing.assert_array_equal(y, [[0., 0., 0., 2.5]])  # 1e-300 flushes to 0 in f32
  y64 = apply_fn(params, x.astype(jnp.float64).at[0, 2].set(1e-300))
  np.testing.assert_array_equal(y64, [[0., 0., 2.5, 2.5]])


def test_ntk_through_step_is_zero():
  x = np.random.RandomState(1).randn(5, 3)
  ntk = stax.serial(stax.Dense(4, W_std=1.3, b_std=0.2), Step()).kernel_fn(
      x, None, "ntk")
  np.testing.assert_array_equal(ntk, 0.)
  # After a readout, only the readout's own parameters contribute.
  net = stax.serial(stax.Dense(4, W_std=1.3, b_std=0.2), Step(2.),
                    stax.Dense(1, W_std=0.7, b_std=0.4))
  k = net.kernel_fn(x, None, ("nngp", "ntk"))
  np.testing.assert_array_equal(k.ntk, k.nngp)


def test_zero_norm_inputs_give_zero_rows_without_nan():
  x = np.random.RandomState(2).randn(4, 3)
  x[1] = 0.
  net = stax.serial(stax.Dense(8, W_std=1.5), Step(), stax.Dense(1, W_std=2.))
  k = net.kernel_fn(x, None, ("nngp", "ntk", "cov1"))
  for m in k:
    assert np.all(np.isfinite(m))
  np.testing.assert_array_equal(k.nngp[1], 0.)
  np.testing.assert_array_equal(k.cov1, [2., 0., 2., 2.])
  # The other entries do not notice the zero row.
  keep = [0, 2, 3]
  np.testing.assert_array_equal(k.nngp[np.ix_(keep, keep)],
                                net.kernel_fn(x[keep], None, "nngp"))
  grad = jax.grad(lambda x: net.kernel_fn(x, None, "nngp").sum())(jnp.asarray(x))
  assert np.all(np.isfinite(grad))


def test_scale_invariance_and_height():
  x = np.random.RandomState(3).randn(4, 5)
  net = lambda a: stax.serial(stax.Dense(3), Step(a))
  base = net(1.).kernel_fn(x, None, "nngp")
  # phi(lambda x) = phi(x): rescaling an input changes nothing; a scales by a^2.
  np.testing.assert_allclose(net(1.).kernel_fn(x * [[0.1], [1.], [7.], [3.]],
                                               None, "nngp"),
                             base, rtol=1e-14)
  np.testing.assert_allclose(net(3.).kernel_fn(x, None, "nngp"), 9. * base,
                             rtol=1e-14)


def test_agrees_with_sign_from_nt_dense():
  # 1[x > 0] = (1 + sign x) / 2 almost surely and E[sign u] = 0, so
  # E[step(u) step(v)] = (1 + E[sign u sign v]) / 4: a second closed form,
  # written independently (arcsin via arctan2) in another plugin.
  rng = np.random.RandomState(5)
  x1, x2 = rng.randn(5, 3), rng.randn(4, 3)
  first = stax.Dense(6, W_std=1.2, b_std=0.4)
  step = stax.serial(first, Step(1.7)).kernel_fn(x1, x2, "nngp")
  sign = stax.serial(first, stax.Sign()).kernel_fn(x1, x2, "nngp")
  np.testing.assert_allclose(step, 1.7 ** 2 * (1 + sign) / 4, rtol=1e-13)


def test_needs_gaussian_input():
  x = np.ones((2, 3))
  with pytest.raises(KernelRequirementError, match="Step needs a Gaussian.*Dense"):
    Step().kernel_fn(x)
  with pytest.raises(KernelRequirementError, match=r"previous layer \(Step\)"):
    stax.serial(stax.Dense(2), Step(), Step()).kernel_fn(x)


SHAPES = [(6, 4), (5, 3, 2, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("with_x2", [False, True])
@pytest.mark.parametrize("a", [1., 0.6])
def test_conformance(shape, with_x2, a):
  rng = np.random.RandomState(4)
  x1 = rng.randn(*shape)
  x1[0] = 0.  # a zero-norm example goes through the whole suite
  x2 = rng.randn(3, *shape[1:]) if with_x2 else None
  net = stax.serial(stax.Dense(5, W_std=1.4, b_std=0.3), Step(a),
                    stax.Dense(2, W_std=0.9, b_std=0.1))
  testing.check_kernel_fn(net, x1, x2)
  # Without a first-layer bias the zero example keeps a zero-norm
  # pre-activation: the case that must not produce NaN.
  bare = stax.serial(stax.Dense(5, W_std=1.4), Step(a), stax.Dense(2))
  testing.check_kernel_fn(bare, x1, x2)


def _unit(deg, r=1.):
  t = np.deg2rad(deg)
  return [r * np.cos(t), r * np.sin(t)]


# 2-D inputs at chosen angles and norms (and one zero): every pair is 0 or at
# least 40 degrees apart, which the bias bound below relies on.
X1 = np.array([_unit(0.), _unit(60., 2.), _unit(130., 0.5), [0., 0.]])
X2 = np.array([_unit(200., 1.5), _unit(270., 0.8), _unit(320., 3.)])
WIDTH = 512
# Error bars: check_monte_carlo's stderr is the spread of GROUPS group means,
# so (mc - exact) / stderr follows Student's t with GROUPS - 1 = 7 degrees of
# freedom, not a normal: P(|t_7| > 6) = 5e-4 per entry, hence Z = 6. (Each
# group compiles its own estimator, so more groups cost minutes.) The keys
# are fixed, so the outcome is reproducible.
GROUPS, Z = 8, 6.


@pytest.mark.slow
def test_monte_carlo_one_hidden_layer():
  # One Step between exactly Gaussian pre-activations (the first Dense acts on
  # fixed inputs) and a readout: E[(1/W) sum_j phi(h_j) phi(h_j')] is the
  # closed form at any width W, so the estimate is unbiased (bias=0) and only
  # sampling error remains: per entry about
  # K sqrt((1 + rho^2) / n_out + 1 / W) / sqrt(n_samples), ~1% of the largest
  # entry for the NNGP, ~0.1% for the NTK (readout parameters only).
  # The zero input's entries are deterministic (stderr 0) and agree only to
  # summation round-off, so bias=1e-12 serves as a round-off floor.
  net = stax.serial(stax.Dense(WIDTH, W_std=1.5), Step(2.),
                    stax.Dense(32, W_std=1.2, b_std=0.1))
  testing.check_monte_carlo(net, X1, X2, key=jax.random.PRNGKey(7),
                            n_samples=1024, groups=GROUPS, z=Z, bias=1e-12)


@pytest.mark.slow
def test_monte_carlo_two_step_layers():
  # The second Step sees a finite-width empirical kernel, so the estimate has
  # an O(1/W) bias. Per a^2, k(rho) = (pi - arccos rho) / (2 pi) and
  # E[k(rho_hat)] - k(rho) ~ k''(rho) Var(rho_hat) / 2. With no biases before
  # it, rho = 1 - theta0 / pi <= 7/9 for input angles theta0 >= 40 degrees,
  # where k'' = rho / (2 pi (1 - rho^2)^1.5) <= 0.51. rho_hat = s12 / s11
  # (s11 = s22 = 1/2) with s the means over W units of products of steps, so
  # sd(s) <= 1 / (2 sqrt(W)) and Var(rho_hat) <= (1 + rho)^2 / W <= 3.2 / W.
  # The bias is then <= 0.51 * 3.2 / 2 / W = 0.82 / W, and the largest entry
  # (40 degrees apart) is >= k(7/9) = 0.39: relative bias <= 2.1 / W. We
  # allow 3 / W (0.6%) for the higher-order terms. Sampling error as above.
  net = stax.serial(stax.Dense(WIDTH, W_std=1.5), Step(),
                    stax.Dense(WIDTH, W_std=1.3), Step(),
                    stax.Dense(16, W_std=0.8, b_std=0.2))
  # Two samples at a time: the Jacobian of the 512 x 512 middle layer is
  # ~130 MB per input batch and sample.
  testing.check_monte_carlo(net, X1, X2, key=jax.random.PRNGKey(8),
                            n_samples=1024, groups=GROUPS, z=Z,
                            bias=3. / WIDTH, _samples_per_chunk=2)


def test_hook_returns_step_spec(plugin_manager):
  (spec,) = nt_step.plugin.register_layers()
  assert spec.name == "Step" and spec.factory is Step
  assert spec.kernel == "analytic"
  layers = registry.Registry(plugin_manager).layers
  assert layers.get("Step").plugin == "nt-step"
  assert layers.get("nt-step:Step").factory is Step
  assert layers.get("Step").doc.startswith("Heaviside step")


def test_installed_entry_point_registers_step():
  (ep,) = [ep for ep in importlib.metadata.entry_points(group=registry.GROUP)
           if ep.name == "nt-step"]
  assert ep.value == "nt_step.plugin"
  pm = registry.new_manager()
  assert registry.load_entry_points(pm, only={"nt-step"}) == []
  assert registry.Registry(pm).layers.get("Step").factory is Step


def test_cli_lists_step(fresh_global_registry):
  from click.testing import CliRunner  # pylint: disable=import-outside-toplevel
  from ntcore import cli  # pylint: disable=import-outside-toplevel
  result = CliRunner().invoke(cli.main, ["list-layers"])
  assert result.exit_code == 0, result.output
  rows = {line.split()[0]: line.split()[1:3]
          for line in result.stdout.splitlines()[1:]}
  assert rows["Step"] == ["nt-step", "analytic"]


def test_stax_step_resolves_through_registry(fresh_global_registry):
  assert stax.Step is Step
  assert stax.from_registry("nt-step:Step") is Step
  assert "Step" in dir(stax)
  assert fresh_global_registry.layers.get("Step").plugin == "nt-step"
  assert not [e for e in fresh_global_registry.errors() if e.plugin == "nt-step"]
  assert ntcore.stax.Step(2.).kernel_fn.name == "Step"
