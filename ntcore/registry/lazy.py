"""Lazy package exports, so that loading a plugin costs no jax import.

The `ntcore` CLI loads every plugin's entry point to learn which commands it
adds; `ntcore --help` must stay well under a second, so a plugin's entry-point
module and its package `__init__` import nothing heavy. A package declares
what it exports and where each name lives; a name is imported on first use::

    # nt_dense/__init__.py
    from ntcore.registry.lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {
        "Dense": "nt_dense.dense",
        "Relu": "nt_dense.rectified",
    })

and the hooks in its entry-point module import inside their bodies.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]],
                            list[str]]:
  """`(__getattr__, __dir__, __all__)` for `package` (PEP 562).

  Args:
    package: the package's `__name__`.
    exports: public name -> the module that defines it.
  """
  exports = dict(exports)

  def __getattr__(name: str):  # pylint: disable=invalid-name
    if name not in exports:
      raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(exports[name]), name)
    setattr(sys.modules[package], name, value)
    return value

  def __dir__() -> list[str]:  # pylint: disable=invalid-name
    return sorted(set(vars(sys.modules[package])) | set(exports))

  return __getattr__, __dir__, sorted(exports)
