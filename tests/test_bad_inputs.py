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
