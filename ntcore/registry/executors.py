"""Executors plugins offer: named ways to run the blocks of `ntcore.batch`.

`ExecutorSpec(name, factory)` is what `register_executors` returns;
`factory(**options)` builds an object following
`ntcore.parallel.executor.Executor`. The name `"local"` is the core's own
in-process executor and cannot be registered. Which plugin provides which
executor is a string-only table, so a missing one names its install line.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pluggy

from ntcore.registry.layers import SpecRegistry
from ntcore.registry.specs import _check_callable, _first_line

LOCAL = "local"
"""The core's in-process executor (devices, `jax.distributed`)."""

EXECUTOR_PROVIDERS = {"dask": "nt-dask"}
"""Executor name -> the distribution that registers it."""


@dataclasses.dataclass(frozen=True)
class ExecutorSpec:
  """An executor a plugin offers (`ntcore.batch(..., executor=name)`).

  Attributes:
    name: what users pass as `executor=` / `--executor`.
    factory: `factory(**options) -> Executor`; the command line passes
      `scheduler=` and `workers=` when they are given, and `model=` (the
      `module:function` spec of the kernel function).
    doc: one line; defaults to the factory's first docstring line.
    plugin: the distribution that registered it; set by the registry.
  """

  name: str
  factory: Callable[..., Any]
  doc: str = ""
  plugin: str = ""

  def __post_init__(self):
    _check_callable("ExecutorSpec", self.name, "factory", self.factory)
    if self.name == LOCAL:
      raise ValueError(f"ExecutorSpec({LOCAL!r}): {LOCAL!r} is the core's "
                       f"in-process executor; register another name.")
    if not self.doc:
      object.__setattr__(self, "doc", _first_line(self.factory))


def executor_registry(pm: pluggy.PluginManager) -> SpecRegistry:
  """The executors every loaded plugin registers, by name."""
  return SpecRegistry(pm, "register_executors", "executor", "executor=",
                      EXECUTOR_PROVIDERS, spec_type=ExecutorSpec)
