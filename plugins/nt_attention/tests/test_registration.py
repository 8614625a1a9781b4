"""The plugin registers its layers, and the core's provider table knows them."""

import pytest

from ntcore import registry, stax
from ntcore.registry import providers

import nt_attention
from nt_attention import plugin


@pytest.fixture
def plugin_manager():
  pm = registry.new_manager()
  registry.register(pm, plugin, "nt-attention")
  return pm


def test_hook_registers_both_layers(plugin_manager):
  layers = registry.Registry(plugin_manager).layers
  assert layers.get("GlobalSelfAttention").factory is \
      nt_attention.GlobalSelfAttention
  assert layers.get("Aggregate").factory is nt_attention.Aggregate
  names = {spec.name for spec in plugin.register_layers()}
  assert names == {n for n, d in providers.LAYER_PROVIDERS.items()
                   if d == "nt-attention"}


def test_installed_entry_point_resolves_through_stax():
  assert stax.GlobalSelfAttention is nt_attention.GlobalSelfAttention
  assert stax.from_registry("nt-attention:Aggregate") is nt_attention.Aggregate
