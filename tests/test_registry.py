"""The plugin registry: attribution, order, clashes, load failures, selection,
and the errors `stax.<Name>` raises. Only tiny fake plugins defined here."""

import importlib.metadata
import subprocess
import sys
import types

import numpy as np
import pluggy
import pytest

import ntcore
import ntcore.testing
from ntcore import LayerNameClashError, LayerNotInstalledError, errors, stax
from ntcore.registry import (LOAD_ENV, EstimatorSpec, LayerSpec, LoadError,
                             PluginLoadWarning, Registry, hookimpl,
                             load_entry_points)
from ntcore.registry.manager import TRACE_ENV

X = np.arange(6.).reshape(2, 3)
GRAM = X @ X.T / 3  # the input kernel: channel mean of products


def scale_layer(name, c):
  """A factory of the elementwise layer `c * x`; its kernel is `c**2 * k`."""

  def rule(k, **kwargs):
    del kwargs
    out = k.scale_preactivations(c ** 2)
    return out.replace(ntk=None if k.ntk is None else c ** 2 * k.ntk)

  def factory():
    return ntcore.elementwise_layer(name, lambda x: c * x, rule,
                                    requires=ntcore.Requirements())

  factory.__doc__ = f"Multiplies by {c}.\n\nA fake layer for registry tests."
  return factory


def fake_plugin(name, *layers, kind="analytic"):
  """A module-like plugin `name` registering `(layer_name, c)` scale layers."""
  plugin = types.ModuleType(name)

  @hookimpl
  def register_layers():
    return [LayerSpec(n, scale_layer(n, c), kernel=kind) for n, c in layers]

  plugin.register_layers = register_layers
  return plugin


class FakeEntryPoint:
  """What `importlib.metadata.entry_points()` yields: `.name`, `.load()`, `.dist`."""

  def __init__(self, name, plugin=None, error=None, version="1.2.3"):
    self.name, self.plugin, self.error = name, plugin, error
    self.dist = types.SimpleNamespace(name=name, version=version)

  def load(self):
    if self.error is not None:
      raise self.error
    return self.plugin


def nngp_of(factory):
  return np.asarray(factory().kernel_fn(X, get="nngp"))


# Attribution and order ------------------------------------------------------


def test_hookimpl_is_plain_data_callable_directly():
  specs = fake_plugin("fake-a", ("Foo", 2.)).register_layers()
  assert [(s.name, s.plugin, s.kernel) for s in specs] == [("Foo", "", "analytic")]


def test_specs_attributed_to_their_plugin(plugin_manager):
  pm = plugin_manager(fake_plugin("fake-a", ("Foo", 2.), ("Bar", 1.)),
                      fake_plugin("fake-b", ("Baz", 3.), kind="numerical"))
  layers = Registry(pm).layers
  assert {s.name: s.plugin for s in layers.specs()} == {
      "Bar": "fake-a", "Baz": "fake-b", "Foo": "fake-a"}
  baz = layers.get("Baz")
  assert baz.kernel == "numerical"
  assert baz.doc == "Multiplies by 3.0."  # first docstring line
  assert layers.plugins() == ["fake-a", "fake-b"]
  assert layers.clashes() == {}
  np.testing.assert_allclose(nngp_of(layers.get("Foo").factory), 4. * GRAM)


def test_order_is_deterministic_whatever_the_registration_order(plugin_manager):
  def listing(*plugins):
    layers = Registry(plugin_manager(*plugins)).layers
    return ([(s.name, s.plugin) for s in layers.specs()], layers.clashes())

  a = fake_plugin("fake-a", ("Zeta", 1.), ("Foo", 2.))
  b = fake_plugin("fake-b", ("Foo", 3.), ("Alpha", 1.))
  forward, backward = listing(a, b), listing(b, a)
  assert forward == backward
  assert forward[0] == [("Alpha", "fake-b"), ("Foo", "fake-a"),
                        ("Foo", "fake-b"), ("Zeta", "fake-a")]
  assert forward[1] == {"Foo": ["fake-a", "fake-b"]}


# Clashes ----------------------------------------------------------------------


def test_clash_bare_name_raises_naming_both_plugins_and_fixes(use_plugins):
  use_plugins(fake_plugin("fake-b", ("Foo", 3.)),
              fake_plugin("fake-a", ("Foo", 2.), ("Bar", 1.)))
  with pytest.raises(LayerNameClashError) as info:
    stax.Foo  # pylint: disable=pointless-statement
  msg = str(info.value)
  assert "stax.Foo is registered by more than one plugin: fake-a and fake-b" in msg
  assert "'fake-a:Foo'" in msg and "'fake-b:Foo'" in msg
  assert "NTCORE_LOAD_PLUGINS" in msg and "uninstall one" in msg
  with pytest.raises(LayerNameClashError):
    stax.from_registry("Foo")
  assert stax.Bar is stax.from_registry("fake-a:Bar")  # unclashed names stay bare


def test_clashing_names_stay_usable_qualified(use_plugins):
  use_plugins(fake_plugin("fake-a", ("Foo", 2.)),
              fake_plugin("fake-b", ("Foo", 3.)))
  np.testing.assert_allclose(nngp_of(stax.from_registry("fake-a:Foo")), 4. * GRAM)
  np.testing.assert_allclose(nngp_of(getattr(stax, "fake-b:Foo")), 9. * GRAM)


# Load failures ----------------------------------------------------------------


def test_plugin_whose_import_fails_is_recorded_and_others_load(monkeypatch):
  monkeypatch.delenv(LOAD_ENV, raising=False)
  pm = ntcore.registry.new_manager()
  eps = [FakeEntryPoint("fake-good", fake_plugin("fake-good", ("Good", 1.))),
         FakeEntryPoint("fake-broken", error=ImportError("No module named 'jaxx'"),
                        version="0.3.1"),
         FakeEntryPoint("fake-other", fake_plugin("fake-other", ("Other", 1.)))]
  with pytest.warns(PluginLoadWarning, match="fake-broken 0.3.1 failed to load"):
    load_errors = load_entry_points(pm, eps)
  assert load_errors == [LoadError(
      "fake-broken", "0.3.1", "ImportError: No module named 'jaxx'")]
  assert sorted(pm.get_name(p) for p in pm.get_plugins()) == [
      "fake-good", "fake-other"]
  reg = Registry(pm, load_errors)
  assert [s.name for s in reg.layers.specs()] == ["Good", "Other"]
  assert reg.errors() == load_errors


def test_plugin_whose_register_layers_raises_loses_only_its_layers(plugin_manager):
  broken = types.ModuleType("fake-raises")

  @hookimpl
  def register_layers():
    raise RuntimeError("kernel table missing")

  broken.register_layers = register_layers
  pm = plugin_manager(fake_plugin("fake-a", ("Foo", 2.)), broken,
                      fake_plugin("fake-z", ("Zed", 1.)))
  reg = Registry(pm)
  with pytest.warns(PluginLoadWarning, match="fake-raises: register_layers failed"):
    specs = reg.layers.specs()
  assert [(s.name, s.plugin) for s in specs] == [("Foo", "fake-a"), ("Zed", "fake-z")]
  assert reg.errors() == [LoadError(
      "fake-raises", "", "register_layers: RuntimeError: kernel table missing")]


def _typo_plugin():
  typo = types.ModuleType("fake-typo")

  @hookimpl
  def register_layer():  # sic: the hook is register_layers
    return []

  typo.register_layer = register_layer
  return typo


def test_misspelled_hook_fails_loudly_at_registration(plugin_manager):
  with pytest.raises(pluggy.PluginValidationError,
                     match="unknown hook 'register_layer'"):
    plugin_manager(_typo_plugin())


def test_misspelled_hook_plugin_is_a_load_error_and_leaves_manager_clean(
    monkeypatch):
  monkeypatch.delenv(LOAD_ENV, raising=False)
  pm = ntcore.registry.new_manager()
  eps = [FakeEntryPoint("fake-typo", _typo_plugin()),
         FakeEntryPoint("fake-a", fake_plugin("fake-a", ("Foo", 2.)))]
  with pytest.warns(PluginLoadWarning, match="fake-typo"):
    load_errors = load_entry_points(pm, eps)
  assert [e.plugin for e in load_errors] == ["fake-typo"]
  assert "unknown hook 'register_layer'" in load_errors[0].error
  assert [pm.get_name(p) for p in pm.get_plugins()] == ["fake-a"]
  pm.check_pending()  # the failed plugin left nothing pending behind


# Selective loading --------------------------------------------------------------


@pytest.mark.parametrize("value, loaded", [
    (None, ["fake-a", "fake-b", "fake-c"]),
    ("fake-b", ["fake-b"]),
    ("FAKE_A, fake-c", ["fake-a", "fake-c"]),
    ("", []),
])
def test_load_plugins_env_selects_distributions(monkeypatch, value, loaded):
  if value is None:
    monkeypatch.delenv(LOAD_ENV, raising=False)
  else:
    monkeypatch.setenv(LOAD_ENV, value)
  pm = ntcore.registry.new_manager()
  eps = [FakeEntryPoint(n, fake_plugin(n, (n.upper(), 1.)))
         for n in ("fake-c", "fake-a", "fake-b")]
  assert load_entry_points(pm, eps) == []
  assert sorted(pm.get_name(p) for p in pm.get_plugins()) == loaded


def test_unselected_broken_plugin_is_not_even_imported(monkeypatch):
  monkeypatch.setenv(LOAD_ENV, "fake-a")
  pm = ntcore.registry.new_manager()
  eps = [FakeEntryPoint("fake-a", fake_plugin("fake-a", ("Foo", 1.))),
         FakeEntryPoint("fake-broken", error=ImportError("boom"))]
  assert load_entry_points(pm, eps) == []  # and no warning (filterwarnings=error)
  assert pm.has_plugin("fake-a") and not pm.has_plugin("fake-broken")


# Unknown and uninstalled names ------------------------------------------------


def test_unknown_name_is_an_attribute_error_listing_installed_plugins(use_plugins):
  use_plugins(fake_plugin("fake-a", ("Foo", 2.), ("Bar", 1.)))
  assert not hasattr(stax, "Nope")
  with pytest.raises(AttributeError) as info:
    stax.Nope  # pylint: disable=pointless-statement
  assert isinstance(info.value, LayerNotInstalledError)
  msg = str(info.value)
  assert msg.startswith("stax.Nope is not installed.")
  assert "Installed layer plugins: fake-a (Bar, Foo)." in msg
  assert "No known plugin provides Nope." in msg


def test_known_but_uninstalled_name_gives_the_install_line(use_plugins):
  use_plugins(fake_plugin("fake-a", ("Foo", 2.)))
  with pytest.raises(LayerNotInstalledError,
                     match=r"pip install -e plugins/nt_conv") as info:
    stax.Conv  # pylint: disable=pointless-statement
  assert "Conv is provided by the nt-conv plugin" in str(info.value)


def test_typo_gets_a_close_match_suggestion(use_plugins):
  use_plugins(fake_plugin("fake-a", ("Foo", 2.)))
  with pytest.raises(LayerNotInstalledError, match="Did you mean Dense"):
    stax.Dence  # pylint: disable=pointless-statement
  with pytest.raises(LayerNotInstalledError, match="Did you mean Foo"):
    stax.from_registry("Fooo")


def test_no_plugins_at_all_says_none_installed(use_plugins):
  use_plugins()
  with pytest.raises(LayerNotInstalledError, match="Installed layer plugins: none"):
    stax.from_registry("Dense")
  assert "Foo" not in dir(stax) and "serial" in dir(stax)


def test_estimators_resolve_as_top_level_names(use_plugins):
  def my_estimator(x):
    """Doubles x (fake estimator)."""
    return 2 * x

  class FakeEstimators:
    @staticmethod
    @hookimpl
    def register_estimators():
      return [EstimatorSpec("my_estimator", my_estimator)]

  reg = use_plugins(("fake-est", FakeEstimators))
  assert ntcore.my_estimator(3) == 6
  assert reg.estimators.get("my_estimator").plugin == "fake-est"
  assert not hasattr(ntcore, "monte_carlo_kernel_fn")
  with pytest.raises(errors.EstimatorNotInstalledError,
                     match="pip install -e plugins/nt_montecarlo") as info:
    ntcore.monte_carlo_kernel_fn  # pylint: disable=pointless-statement
  assert "Installed estimator plugins: fake-est (my_estimator)" in str(
      info.value)


def _reference_plugin(reference):
  class ByReference:
    @staticmethod
    @hookimpl
    def register_estimators():
      return [EstimatorSpec("lazy_estimator", reference, "Fake, by reference.")]

  return ByReference


def test_an_estimator_by_reference_is_imported_only_when_asked_for(
    use_plugins, tmp_path, monkeypatch):
  module = tmp_path / "fake_heavy_estimators.py"
  module.write_text("def lazy_estimator(x):\n  return 3 * x\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.delitem(sys.modules, "fake_heavy_estimators", raising=False)
  reg = use_plugins(("fake-lazy", _reference_plugin(
      "fake_heavy_estimators:lazy_estimator")))
  assert reg.estimators.get("lazy_estimator").doc == "Fake, by reference."
  assert "fake_heavy_estimators" not in sys.modules  # registered, not imported
  assert ntcore.lazy_estimator(2) == 6
  assert "fake_heavy_estimators" in sys.modules


@pytest.mark.parametrize("reference, match", [
    ("no_such_module_xyz:f", "ModuleNotFoundError"),
    ("json:no_such_function", "AttributeError"),
    ("json:__doc__", "not callable"),
])
def test_a_broken_reference_names_the_plugin_when_used(use_plugins, reference,
                                                       match):
  use_plugins(("fake-broken-ref", _reference_plugin(reference)))
  with pytest.raises(errors.PluginLoadError,
                     match=f"fake-broken-ref registers ntcore.lazy_estimator"
                     f".*{match}"):
    ntcore.lazy_estimator  # pylint: disable=pointless-statement


@pytest.mark.parametrize("reference", ["json", "json:", ":f", "json:a.b"])
def test_a_malformed_reference_is_rejected_when_registered(reference):
  with pytest.raises(TypeError, match="'package.module:attribute'"):
    EstimatorSpec("x", reference)


def test_using_an_estimator_does_not_import_scikit_learn():
  # nt-sklearn registers by reference: `ntcore.empirical_ntk_fn` builds the
  # estimator registry, which imports every plugin's hook.
  code = ("import sys, ntcore; ntcore.empirical_ntk_fn; "
          "assert 'sklearn' not in sys.modules, 'imported'; "
          "ntcore.NTKRegressor; assert 'sklearn' in sys.modules")
  subprocess.run([sys.executable, "-c", code], check=True)


# Which error a name that is not installed raises, by kind ------------------


def _raised(get):
  with pytest.raises(errors.PluginNotInstalledError) as info:
    get()
  return info.value


def test_each_kind_raises_its_own_not_installed_error(use_plugins):
  reg = use_plugins()
  layer = _raised(lambda: stax.Conv)
  estimator = _raised(lambda: ntcore.linearize)
  solver = _raised(lambda: reg.ode_solvers.get("dopri5"))
  executor = _raised(lambda: reg.executors.get("dask"))
  assert type(layer) is LayerNotInstalledError
  assert type(estimator) is errors.EstimatorNotInstalledError
  assert type(solver) is errors.OdeSolverNotInstalledError
  assert type(executor) is errors.PluginNotInstalledError
  for error in (layer, estimator, solver, executor):
    assert isinstance(error, errors.PluginNotInstalledError)
    assert isinstance(error, LookupError) and isinstance(error,
                                                         errors.NtcoreError)
  # Only the layer error and its compatibility subclass are AttributeErrors
  # (hasattr on stax and ntcore); solvers and executors are not layers.
  assert not isinstance(solver, (LayerNotInstalledError, AttributeError))
  assert not isinstance(executor, (LayerNotInstalledError, AttributeError))
  assert str(estimator).startswith("ntcore.linearize is not installed.")
  assert "nt-taylor" in str(estimator)
  assert "Installed ODE solver plugins: none" in str(solver)


def test_estimator_error_still_caught_by_except_layer_not_installed(
    use_plugins):
  use_plugins()
  try:  # what code written before EstimatorNotInstalledError existed does
    ntcore.taylor_expand  # pylint: disable=pointless-statement
  except LayerNotInstalledError as e:
    caught = e
  assert isinstance(caught, errors.EstimatorNotInstalledError)
  assert isinstance(caught, AttributeError) and not hasattr(ntcore,
                                                             "linearize")


# ntcore.testing.check_every_layer_has_a_case -----------------------------------


def test_every_layer_has_a_case_passes_on_exactly_the_registered_names(
    use_plugins):
  use_plugins(fake_plugin("fake-a", ("Foo", 2.), ("Bar", 1.)),
              fake_plugin("fake-b", ("Baz", 3.)))
  ntcore.testing.check_every_layer_has_a_case("fake-a", {"Foo": 1, "Bar": 2})
  ntcore.testing.check_every_layer_has_a_case("fake-b", ["Baz"])


def test_every_layer_has_a_case_names_missing_and_extra_cases(use_plugins):
  use_plugins(fake_plugin("fake-a", ("Foo", 2.), ("Bar", 1.)),
              fake_plugin("fake-b", ("Baz", 3.)))
  with pytest.raises(AssertionError, match=r"without a case: \['Bar'\]; "
                     r"cases for layers it does not register: none"):
    ntcore.testing.check_every_layer_has_a_case("fake-a", ["Foo"])
  # Another plugin's layer is not this plugin's case.
  with pytest.raises(AssertionError, match=r"without a case: none; cases "
                     r"for layers it does not register: \['Baz'\]"):
    ntcore.testing.check_every_layer_has_a_case("fake-a",
                                                ["Foo", "Bar", "Baz"])


def test_every_layer_has_a_case_says_when_the_plugin_is_not_loaded(
    use_plugins):
  use_plugins(fake_plugin("fake-a", ("Foo", 2.)))
  with pytest.raises(AssertionError, match="nt-conv registers no layers: is "
                     "it installed(.|\n)*Loaded layer plugins: fake-a"):
    ntcore.testing.check_every_layer_has_a_case("nt-conv", ["Conv"])


def test_trace_env_prints_each_one_plugin_hook_call(monkeypatch, capsys,
                                                   plugin_manager):
  monkeypatch.setenv(TRACE_ENV, "1")
  pm = plugin_manager(fake_plugin("fake-a", ("Foo", 2.)))
  assert [s.name for s in Registry(pm).layers.specs()] == ["Foo"]
  err = capsys.readouterr().err
  assert "ntcore: calling register_layers on ['fake-a']" in err
  assert "ntcore: register_layers done" in err


def test_plugin_touching_ntcore_while_loading_is_loaded_once(
    monkeypatch, fresh_global_registry):
  del fresh_global_registry
  monkeypatch.delenv(LOAD_ENV, raising=False)
  loads = []

  class SelfImporting(FakeEntryPoint):
    def load(self):
      # What `from ntcore import kernel_ops` does inside a plugin's import
      # before ntcore.kernel_ops exists: ntcore.__getattr__ asks the registry.
      assert not hasattr(ntcore, "not_a_submodule")
      loads.append(self.name)
      return super().load()

  eps = [SelfImporting("fake-a", fake_plugin("fake-a", ("Foo", 2.)))]
  monkeypatch.setattr(importlib.metadata, "entry_points",
                      lambda group: eps if group == "ntcore" else [])
  assert ntcore.registry.get_registry().layers.plugins() == ["fake-a"]
  assert loads == ["fake-a"]
