"""Bad input to the core gets one clear `NtcoreError`, never a wrong number.

Plugins that return garbage, `NTCORE_LOAD_PLUGINS` naming what is not
installed, `predict` arguments out of range, a list kernel reaching a
single-kernel layer, non-finite kernels from finite inputs, and the demo's
command-line ranges. Each test checks the error type and that the message
names the problem.
"""

import importlib.util
import pathlib
import types

import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner

import ntcore
from ntcore import errors, predict, stax
from ntcore.cli import main
from ntcore.registry import (LOAD_ENV, EstimatorSpec, LayerSpec, Registry,
                             hookimpl, load_entry_points)
from ntcore.registry.manager import LoadError

_spec = importlib.util.spec_from_file_location(
    "fakes", pathlib.Path(__file__).with_name("fakes.py"))
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)


def identity_factory():
  """The identity layer (a fake for registry tests)."""
  return ntcore.elementwise_layer("Same", lambda x: x, lambda k, **kw: k,
                                  requires=ntcore.Requirements())


def layers_plugin(name, result):
  """A plugin `name` whose `register_layers` returns `result()`."""
  plugin = types.ModuleType(name)
  plugin.register_layers = hookimpl(lambda: result())
  return plugin


def healthy(name="fake-good", layer="Same"):
  return layers_plugin(name, lambda: [LayerSpec(layer, identity_factory)])


class FakeEntryPoint:
  def __init__(self, name, plugin):
    self.name, self.plugin = name, plugin
    self.dist = types.SimpleNamespace(name=name, version="0.1")

  def load(self):
    return self.plugin


# Plugin isolation ---------------------------------------------------------------


@pytest.mark.parametrize("garbage, says", [
    (lambda: 3, "returned int (3)"),
    (lambda: "Dense", "returned str ('Dense')"),
    (lambda: None, "returned NoneType"),
    (lambda: LayerSpec("Lone", identity_factory), "returned LayerSpec"),
    (lambda: [LayerSpec("Ok", identity_factory), 7], "item 1 is int (7)"),
    (lambda: [EstimatorSpec("wrong_kind", len)], "item 0 is EstimatorSpec"),
])
def test_layer_hook_returning_garbage_loses_only_its_own_layers(
    use_plugins, garbage, says):
  reg = use_plugins(healthy(), layers_plugin("fake-bad", garbage))
  with pytest.warns(ntcore.registry.PluginLoadWarning,
                    match="fake-bad: register_layers failed"):
    factory = stax.Same  # the healthy plugin's layer still resolves
  assert factory is identity_factory
  [err] = reg.errors()
  assert err.plugin == "fake-bad"
  assert "must return a list of LayerSpec" in err.error and says in err.error
  assert [s.plugin for s in reg.layers.specs()] == ["fake-good"]


def test_bad_layer_name_is_reported_with_the_rule(use_plugins):
  reg = use_plugins(healthy(), layers_plugin(
      "fake-bad", lambda: [LayerSpec("my-layer", identity_factory)]))
  with pytest.warns(ntcore.registry.PluginLoadWarning):
    assert stax.Same is identity_factory
  assert "named 'my-layer'" in reg.errors()[0].error
  assert "Python identifier" in reg.errors()[0].error


def test_layer_spec_with_a_non_callable_factory_fails_in_the_plugin():
  with pytest.raises(TypeError, match=r"LayerSpec\('Dense'\).factory must be "
                     "callable, got int"):
    LayerSpec("Dense", 3)


def test_bad_estimator_hook_leaves_layers_and_other_estimators(use_plugins):
  class GoodEstimators:
    @staticmethod
    @hookimpl
    def register_estimators():
      return [EstimatorSpec("doubled", lambda x: 2 * x)]

  class BadEstimators:
    @staticmethod
    @hookimpl
    def register_estimators():
      return {"not": "a list"}

  reg = use_plugins(healthy(), ("fake-est", GoodEstimators),
                    ("fake-est-bad", BadEstimators))
  assert stax.Same is identity_factory
  with pytest.warns(ntcore.registry.PluginLoadWarning, match="fake-est-bad"):
    assert ntcore.doubled(4) == 8
  [err] = reg.errors()
  assert err.plugin == "fake-est-bad"
  assert "register_estimators must return a list of EstimatorSpec" in err.error


def test_ntcore_plugins_reports_the_broken_hook_and_runs(use_plugins):
  use_plugins(healthy(), layers_plugin("fake-bad", lambda: 42))
  result = CliRunner().invoke(main, ["plugins"], catch_exceptions=False)
  assert result.exit_code == 0
  lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
  assert lines["fake-good"].endswith("ok")
  assert "error: register_layers must return a list of LayerSpec, but " \
         "returned int (42)" in lines["fake-bad"]
  result = CliRunner().invoke(main, ["list-layers"], catch_exceptions=False)
  assert result.exit_code == 0 and "Same" in result.stdout


def test_hook_result_is_checked_by_the_hook_error_class(plugin_manager):
  reg = Registry(plugin_manager(layers_plugin("fake-bad", lambda: 1.5)))
  with pytest.warns(ntcore.registry.PluginLoadWarning):
    assert reg.layers.specs() == []
  assert reg.errors()[0].error.startswith(
      "register_layers must return a list of LayerSpec, but returned float")
  assert issubclass(errors.PluginHookError, (errors.NtcoreError, TypeError))


def test_load_plugins_naming_an_unknown_plugin_warns_with_the_installed(
    monkeypatch):
  monkeypatch.setenv(LOAD_ENV, "fake-good,nt-cnov")
  pm = ntcore.registry.new_manager()
  eps = [FakeEntryPoint("fake-good", healthy()),
         FakeEntryPoint("fake-other", healthy("fake-other", "Other"))]
  with pytest.warns(errors.UnknownPluginWarning) as record:
    assert load_entry_points(pm, eps) == []
  msg = str(record[0].message)
  assert "NTCORE_LOAD_PLUGINS names nt-cnov" in msg
  assert "installed: fake-good, fake-other" in msg
  assert pm.has_plugin("fake-good") and not pm.has_plugin("fake-other")


def test_not_installed_message_mentions_the_selection_when_set(
    monkeypatch, use_plugins):
  use_plugins(healthy())
  monkeypatch.setenv(LOAD_ENV, "fake-good")
  with pytest.raises(errors.LayerNotInstalledError) as info:
    stax.Conv  # pylint: disable=pointless-statement
  msg = str(info.value)
  assert "NTCORE_LOAD_PLUGINS='fake-good' is set" in msg
  assert "unset it" in msg
  monkeypatch.delenv(LOAD_ENV)
  with pytest.raises(errors.LayerNotInstalledError) as info:
    stax.Conv  # pylint: disable=pointless-statement
  assert LOAD_ENV not in str(info.value)


def test_load_errors_stay_data(use_plugins):
  reg = use_plugins(healthy(), load_errors=[LoadError("fake-x", "1", "boom")])
  assert reg.errors() == [LoadError("fake-x", "1", "boom")]


# predict arguments ---------------------------------------------------------------


K = np.array([[2., 0.5, 0.1], [0.5, 1.5, 0.2], [0.1, 0.2, 1.]])
Y = np.array([[1.], [-1.], [0.5]])


@pytest.mark.parametrize("lr", [-0.1, np.inf, np.nan])
def test_gradient_descent_mse_rejects_bad_learning_rates(lr):
  with pytest.raises(errors.PredictArgumentError,
                     match=r"learning_rate=.* must be a finite scalar >= 0"):
    predict.gradient_descent_mse(K, Y, learning_rate=lr)
  assert issubclass(errors.PredictArgumentError, ValueError)


def test_ensemble_rejects_a_negative_learning_rate():
  kernel_fn = fakes.linear(out_dim=1).kernel_fn
  with pytest.raises(errors.PredictArgumentError,
                     match="gradient_descent_mse_ensemble: learning_rate=-1"):
    predict.gradient_descent_mse_ensemble(kernel_fn, K, Y, learning_rate=-1.)


@pytest.mark.parametrize("t", [np.nan, -1., -np.inf, np.array([0., 1., np.nan])])
def test_gradient_descent_mse_rejects_nan_and_negative_times(t):
  predict_fn = predict.gradient_descent_mse(K, Y)
  with pytest.raises(errors.PredictArgumentError,
                     match=r"t holds 1 invalid time\(s\).*pass times in "
                           r"\[0, inf\]"):
    predict_fn(t, 0.)


def test_infinite_time_still_agrees_with_none():
  predict_fn = predict.gradient_descent_mse(K, Y)
  np.testing.assert_allclose(predict_fn(np.inf, 0.), predict_fn(None, 0.),
                             atol=1e-10)


def test_ensemble_predict_fn_rejects_a_nan_time():
  x = np.eye(3)
  predict_fn = predict.gradient_descent_mse_ensemble(
      fakes.linear(out_dim=1).kernel_fn, x, Y)
  with pytest.raises(errors.PredictArgumentError, match="e.g. nan"):
    predict_fn(np.nan, x, "ntk")


@pytest.mark.parametrize("make", [
    lambda: predict.gp_inference(K, Y, diag_reg=-1e-3),
    lambda: predict.gradient_descent_mse(K, Y, diag_reg=np.nan),
])
def test_diag_reg_must_be_finite_and_non_negative(make):
  with pytest.raises(errors.PredictArgumentError,
                     match=r"diag_reg=.* must be a finite scalar >= 0"):
    make()


def test_traced_learning_rate_is_not_checked_but_works():
  import jax  # pylint: disable=import-outside-toplevel

  def f(lr):
    return predict.gradient_descent_mse(K, Y, learning_rate=lr)(1., 0.)

  np.testing.assert_allclose(jax.jit(f)(0.5), f(0.5), rtol=1e-12)


def test_momentum_check_gives_the_valid_range():
  from ntcore.dynamics import _checks  # pylint: disable=import-outside-toplevel
  _checks.check_momentum(0.9, "gradient_descent")
  _checks.check_momentum(None, "gradient_descent")
  for m in (1.5, -0.2, np.nan):
    with pytest.raises(errors.PredictArgumentError,
                       match=r"momentum=.* must be None .* in \[0, 1\]"):
      _checks.check_momentum(m, "gradient_descent")


# The demo's command line ------------------------------------------------------------


@pytest.mark.parametrize("args, says", [
    (["--members", "0"], "n_members (--members) must be >= 2"),
    (["--members", "1"], "n_members (--members) must be >= 2"),
    (["--width", "0"], "width (--width) must be >= 1"),
    (["--steps", "-3"], "steps (--steps) must be >= 1"),
])
def test_demo_sizes_below_the_minimum_are_click_errors(use_plugins, args, says):
  use_plugins()  # the check comes before any layer is looked up
  result = CliRunner().invoke(main, ["demo", "--no-plot", "--no-progress",
                                     *args])
  assert result.exit_code != 0
  assert result.exception is None or isinstance(result.exception, SystemExit)
  assert says in result.output and "Traceback" not in result.output


def test_demo_run_rejects_non_integers():
  from ntcore import demo  # pylint: disable=import-outside-toplevel
  with pytest.raises(errors.DemoArgumentError, match="must be an integer"):
    demo.run(width=2.5)


# Non-finite kernels from finite inputs ---------------------------------------------


def test_overflowing_kernel_warns_with_the_remedy():
  from ntcore import _finite  # pylint: disable=import-outside-toplevel
  kernel_fn = stax.serial(fakes.linear(), fakes.square())[2]
  x = np.random.default_rng(0).normal(size=(3, 4)) * 1e100
  with pytest.warns(errors.NonFiniteKernelWarning):
    out = kernel_fn(x, None, ("nngp", "ntk"))
  assert not np.isfinite(np.asarray(out.nngp)).all()  # q^2 ~ 1e400
  with pytest.warns(errors.NonFiniteKernelWarning) as record:
    assert _finite.warn_if_not_finite(out, x)
  msg = str(record[0].message)
  assert "non-finite entries although the inputs are finite" in msg
  assert "overflowed float64" in msg and "Normalise the inputs" in msg
  assert "float64 (jax.config" not in msg  # already float64: no such advice


def test_float32_overflow_advises_float64():
  from ntcore import _finite  # pylint: disable=import-outside-toplevel
  k = jnp.asarray([[np.inf, 1.], [1., 2.]], jnp.float32)
  with pytest.warns(errors.NonFiniteKernelWarning,
                    match="or compute in float64"):
    _finite.warn_if_not_finite(k, jnp.ones((2, 3), jnp.float32))


def test_finite_kernels_and_non_finite_inputs_do_not_warn():
  from ntcore import _finite  # pylint: disable=import-outside-toplevel
  kernel_fn = stax.serial(fakes.linear(), fakes.square())[2]
  x = np.random.default_rng(0).normal(size=(3, 4))
  assert not _finite.warn_if_not_finite(kernel_fn(x, None, "nngp"), x)
  x[0, 0] = np.nan  # garbage in: the NaN is the input's, not an overflow
  assert not _finite.warn_if_not_finite(kernel_fn(x, None, "nngp"), x)


def test_kernel_fn_itself_warns_when_finite_inputs_overflow():
  kernel_fn = stax.serial(fakes.linear(), fakes.square())[2]
  x = np.random.default_rng(0).normal(size=(3, 4)) * 1e100
  with pytest.warns(errors.NonFiniteKernelWarning, match="Normalise"):
    kernel_fn(x, None, "nngp")


def test_a_missing_fan_in_after_parallel_names_the_fix():
  branches = stax.parallel(fakes.linear(), fakes.linear())
  kernel_fn = stax.serial(stax.FanOut(2), branches, fakes.square())[2]
  with pytest.raises(errors.ShapeError, match="put FanInSum"):
    kernel_fn(np.ones((2, 3)), None, "nngp")


@pytest.mark.parametrize("kwargs, match", [
    (dict(momentum=1.5), "momentum"), (dict(momentum=-0.1), "momentum"),
    (dict(learning_rate=-1.), "learning_rate"),
    (dict(learning_rate=float("nan")), "learning_rate"),
])
def test_gradient_descent_rejects_momentum_and_rates_out_of_range(kwargs,
                                                                   match):
  k = np.eye(3)
  args = dict(learning_rate=1., momentum=None)
  args.update(kwargs)
  with pytest.raises(errors.PredictArgumentError, match=match):
    predict.gradient_descent(lambda fx, y: ((fx - y) ** 2).sum(), k,
                             np.ones((3, 1)), **args)
