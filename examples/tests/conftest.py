"""Test setup for the example scripts: float64, strict rank promotion.

The scripts are not a package; the `example` fixture loads one by file name.
"""

import importlib.util
import pathlib

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# pylint: disable=wrong-import-position
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def example():
  """`example(name)` -> the module `examples/<name>.py`, loaded once."""
  loaded = {}

  def load(name: str):
    if name not in loaded:
      spec = importlib.util.spec_from_file_location(
          f"ntcore_example_{name}", EXAMPLES / f"{name}.py")
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      loaded[name] = module
    return loaded[name]

  return load
