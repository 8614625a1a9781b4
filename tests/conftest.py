"""Core test setup: 2 CPU devices, float64, strict rank promotion, fake plugins.

`jax_num_cpu_devices` must be set before any array exists, so it comes first.
"""

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# pylint: disable=wrong-import-position
import pytest

from ntcore import registry


def _plugin_name(plugin) -> str:
  name = getattr(plugin, "__name__", None)
  if not isinstance(name, str):
    raise TypeError(f"cannot name plugin {plugin!r}; pass (name, plugin).")
  return name


@pytest.fixture
def plugin_manager():
  """Factory: `plugin_manager(*plugins)` -> a fresh PluginManager.

  The manager holds exactly the plugins named: each is `(name, plugin)` or an
  object whose `__name__` is its plugin name (a module, or a class with
  `@hookimpl` static methods). Registration goes through
  `ntcore.registry.register`, so a misspelled hook raises here.
  """

  def make(*plugins):
    pm = registry.new_manager()
    for plugin in plugins:
      name, obj = plugin if isinstance(plugin, tuple) else (
          _plugin_name(plugin), plugin)
      registry.register(pm, obj, name)
    return pm

  return make


@pytest.fixture
def use_plugins(plugin_manager):  # pylint: disable=redefined-outer-name
  """Factory: `use_plugins(*plugins)` installs a Registry of exactly those
  plugins as the global one (what `stax.<Name>` and the CLI see) and returns
  it; the previous global registry is restored after the test.
  """
  saved = []

  def install(*plugins, load_errors=None):
    reg = registry.Registry(plugin_manager(*plugins), load_errors)
    previous = registry.use_registry(reg)
    if not saved:
      saved.append(previous)
    return reg

  try:
    yield install
  finally:
    if saved:
      registry.use_registry(saved[0])


@pytest.fixture
def fresh_global_registry():
  """Forgets the global registry before and after the test, so the test's
  environment (`NTCORE_LOAD_PLUGINS`) takes effect and does not leak."""
  registry.reset()
  try:
    yield
  finally:
    registry.reset()


COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@pytest.fixture
def share(monkeypatch):
  """Small calls run their structure's shared program (the default), with
  the table of shared programs emptied before and after."""
  # pylint: disable=import-outside-toplevel,protected-access
  from ntcore._network import dispatch, shared_programs
  monkeypatch.setenv(dispatch.SHARE_PROGRAMS_ENV, "1")
  shared_programs._programs.clear()
  yield
  shared_programs._programs.clear()


@pytest.fixture
def compiles():
  """A list that receives one entry per XLA compilation while the test runs."""
  seen = []

  def listener(event, duration, **kwargs):
    del duration, kwargs
    if event == COMPILE_EVENT:
      seen.append(event)

  jax.monitoring.register_event_duration_secs_listener(listener)
  yield seen
  jax.monitoring.unregister_event_duration_listener(listener)
