"""End to end: the `ntcore` command line, through click's CliRunner.

Tests marked "real discovery" load the installed entry points (nt-dense must
be installed); the others install a registry of fake plugins."""

import importlib.metadata
import json
import types

import click
import pytest
from click.testing import CliRunner

import ntcore
from ntcore import registry
from ntcore.cli import main
from ntcore.registry import LOAD_ENV, LayerSpec, LoadError, hookimpl


def invoke(*args):
  return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows(stdout):
  """The table under the header line, as lists of columns."""
  return [line.split(None, 3) for line in stdout.splitlines()[1:]]


@pytest.fixture
def real_plugins(monkeypatch, fresh_global_registry):
  """Real entry-point discovery of every installed plugin."""
  del fresh_global_registry
  monkeypatch.delenv(LOAD_ENV, raising=False)


def fake_layers_plugin(name, *layer_names):
  plugin = types.ModuleType(name)

  def factory():
    """A fake layer for CLI tests."""
    return ntcore.elementwise_layer("Fake", lambda x: x, lambda k, **kw: k,
                                    requires=ntcore.Requirements())

  @hookimpl
  def register_layers():
    return [LayerSpec(n, factory) for n in layer_names]

  plugin.register_layers = register_layers
  return plugin


def fake_commands_plugin(name, register):
  plugin = types.ModuleType(name)
  plugin.register_commands = hookimpl(register)
  return plugin


# Real discovery ---------------------------------------------------------------


def test_list_layers_shows_dense_and_relu_from_nt_dense(real_plugins):
  result = invoke("list-layers")
  assert result.exit_code == 0, result.output
  assert result.stdout.splitlines()[0].split() == ["layer", "plugin", "kind", "doc"]
  table = {r[0]: r for r in rows(result.stdout)}
  assert table["Dense"][1:3] == ["nt-dense", "analytic"]
  assert table["Relu"][1] == "nt-dense"
  assert "arc-cosine" in table["Relu"][3]  # the first docstring line


def test_list_layers_json_has_plugin_and_kind(real_plugins):
  result = invoke("list-layers", "--json")
  assert result.exit_code == 0, result.output
  layers = {entry["name"]: entry for entry in json.loads(result.stdout)}
  assert layers["Dense"]["plugin"] == "nt-dense"
  assert layers["Dense"]["kind"] == "analytic"
  assert layers["Dense"]["qualified"] == "nt-dense:Dense"
  assert {e["kind"] for e in layers.values()} <= {
      "analytic", "numerical", "finite-only"}


def test_load_plugins_empty_lists_no_layers(monkeypatch, fresh_global_registry):
  del fresh_global_registry
  monkeypatch.setenv(LOAD_ENV, "")
  assert json.loads(invoke("list-layers", "--json").stdout) == []
  result = invoke("list-layers")
  assert result.exit_code == 0
  assert "Dense" not in result.stdout
  assert "No layers: no layer plugin is loaded (NTCORE_LOAD_PLUGINS='')" in result.stdout
  assert json.loads(invoke("plugins", "--json").stdout) == []


def test_load_plugins_selects_nt_dense(monkeypatch, fresh_global_registry):
  del fresh_global_registry
  monkeypatch.setenv(LOAD_ENV, "nt_dense")
  plugins = json.loads(invoke("plugins", "--json").stdout)
  assert [p["name"] for p in plugins] == ["nt-dense"]


def test_plugins_json_lists_nt_dense_with_version_and_hooks(real_plugins):
  result = invoke("plugins", "--json")
  assert result.exit_code == 0, result.output
  plugins = {p["name"]: p for p in json.loads(result.stdout)}
  dense = plugins["nt-dense"]
  assert dense["version"] == importlib.metadata.version("nt-dense")
  assert "register_layers" in dense["hooks"]
  assert dense["loaded"] and dense["errors"] == []
  text = invoke("plugins").stdout
  assert {r[0]: r[1] for r in rows(text)}["nt-dense"] == dense["version"]


# Fake plugins -----------------------------------------------------------------


def test_clash_shows_one_warning_line_per_name(use_plugins):
  use_plugins(fake_layers_plugin("fake-a", "Foo", "Bar"),
              fake_layers_plugin("fake-b", "Foo"))
  result = invoke("list-layers")
  assert result.exit_code == 0
  assert [r[:2] for r in rows(result.stdout)] == [
      ["Bar", "fake-a"], ["Foo", "fake-a"], ["Foo", "fake-b"]]
  warnings = [l for l in result.stderr.splitlines() if l.startswith("Warning")]
  assert warnings == [
      "Warning: stax.Foo is registered by more than one plugin: fake-a and "
      "fake-b. Use a qualified name ('fake-a:Foo', 'fake-b:Foo'), or load "
      "only one of them with NTCORE_LOAD_PLUGINS, or uninstall one."]
  clash = {(e["name"], e["plugin"]): e["clash"]
           for e in json.loads(invoke("list-layers", "--json").stdout)}
  assert clash == {("Bar", "fake-a"): False, ("Foo", "fake-a"): True,
                   ("Foo", "fake-b"): True}


def test_load_errors_are_warnings_after_the_table(use_plugins):
  use_plugins(fake_layers_plugin("fake-a", "Foo"), load_errors=[
      LoadError("fake-broken", "0.2.0", "ImportError: No module named 'jaxx'")])
  result = invoke("list-layers")
  assert result.exit_code == 0
  assert result.output.splitlines()[-1] == (
      "Warning: plugin fake-broken 0.2.0 failed: ImportError: No module "
      "named 'jaxx'")
  plugins = {p["name"]: p for p in json.loads(invoke("plugins", "--json").stdout)}
  assert plugins["fake-broken"] == {
      "name": "fake-broken", "version": "0.2.0", "hooks": [], "loaded": False,
      "errors": ["ImportError: No module named 'jaxx'"]}
  assert plugins["fake-a"]["hooks"] == ["register_layers"]
  assert plugins["fake-a"]["version"] == ""  # no such distribution


def test_plugin_register_commands_adds_a_working_subcommand(use_plugins):
  def register_commands(cli):
    @cli.command("hello")
    @click.argument("who")
    def hello(who):
      """Greets WHO (fake plugin command)."""
      click.echo(f"hello {who} from fake-cmd")

  use_plugins(fake_commands_plugin("fake-cmd", register_commands))
  result = invoke("hello", "world")
  assert result.exit_code == 0, result.output
  assert result.stdout == "hello world from fake-cmd\n"
  assert "Greets WHO" in invoke("--help").stdout
  plugins = json.loads(invoke("plugins", "--json").stdout)
  assert plugins[0]["hooks"] == ["register_commands"]


def test_broken_register_commands_does_not_kill_the_cli(use_plugins):
  def broken(cli):
    del cli
    raise RuntimeError("click too old")

  def good(cli):
    cli.add_command(click.Command("ping", callback=lambda: click.echo("pong")))

  use_plugins(fake_commands_plugin("fake-broken", broken),
              fake_commands_plugin("fake-good", good))
  result = invoke("ping")
  assert result.exit_code == 0
  assert result.stdout == "pong\n"
  assert ("Warning: plugin fake-broken failed: register_commands: "
          "RuntimeError: click too old") in result.stderr
  assert invoke("list-layers").exit_code == 0
  plugins = {p["name"]: p for p in json.loads(invoke("plugins", "--json").stdout)}
  assert plugins["fake-broken"]["errors"] == [
      "register_commands: RuntimeError: click too old"]
  assert plugins["fake-good"]["errors"] == []


def test_plugin_command_cannot_shadow_a_builtin(use_plugins):
  def shadow(cli):
    cli.add_command(click.Command("plugins", callback=lambda: click.echo("mine")))

  use_plugins(fake_commands_plugin("fake-shadow", shadow))
  plugins = json.loads(invoke("plugins", "--json").stdout)
  assert plugins[0]["name"] == "fake-shadow"
  assert "built in" in plugins[0]["errors"][0]


def test_ntcore_error_in_a_command_is_a_clean_cli_error(use_plugins):
  def register_commands(cli):
    @cli.command("needs-conv")
    def needs_conv():
      ntcore.stax.from_registry("Conv")

  use_plugins(fake_commands_plugin("fake-cmd", register_commands))
  result = CliRunner().invoke(main, ["needs-conv"])
  assert result.exit_code == 1
  assert isinstance(result.exception, SystemExit)  # not a traceback
  assert "Error: stax.Conv is not installed." in result.stderr
  assert "pip install -e plugins/nt_conv" in result.stderr


def test_global_registry_restored_after_fixture_use():
  # Runs after the use_plugins tests above (pytest keeps file order): the
  # global registry must be a real one, or None (rebuilt on demand), never a
  # leftover fake.
  current = registry.use_registry(None)
  registry.use_registry(current)
  names = [] if current is None else [n for n, _ in current.pm.list_name_plugin()]
  assert not any(name.startswith("fake-") for name in names)
