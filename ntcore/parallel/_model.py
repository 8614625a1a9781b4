"""MODEL of `ntcore kernel MODEL ...`: a `module:function` spec returning a
stax triple, loaded the same way by the command and by a cluster worker."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable

from ntcore.errors import ModelLoadError


def load_model(spec: str) -> Callable[..., Any]:
  """The `kernel_fn` of the stax triple returned by `module:function`.

  The current directory is searched first, then `PYTHONPATH`.

  Raises:
    ModelLoadError: `spec` is malformed, the module or function is missing,
      or the function does not return `(init_fn, apply_fn, kernel_fn)`.
  """
  module_name, sep, attr = spec.partition(":")
  if not sep or not module_name or not attr:
    raise ModelLoadError(
        f"MODEL {spec!r} is not of the form module:function. Name a Python "
        f"function returning a stax triple, e.g. my_models:wide_resnet for "
        f"def wide_resnet() in my_models.py in the current directory.")
  if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ModelLoadError(
        f"MODEL {spec!r}: cannot import module {module_name!r} ({e}). Run "
        f"from the directory holding {module_name.replace('.', '/')}.py, or "
        f"add its directory to PYTHONPATH.") from e
  fn = getattr(module, attr, None)
  if not callable(fn):
    raise ModelLoadError(
        f"MODEL {spec!r}: module {module_name!r} has no function {attr!r}"
        f"{'' if fn is None else f' (it is a {type(fn).__name__})'}. Name a "
        f"function that returns stax.serial(...).")
  triple = fn()
  if (not isinstance(triple, tuple) or len(triple) != 3
      or not callable(triple[2])):
    raise ModelLoadError(
        f"MODEL {spec!r} returned {type(triple).__name__}, not a stax triple "
        f"(init_fn, apply_fn, kernel_fn). Return e.g. stax.serial(...) "
        f"itself.")
  return triple[2]
