"""nt-dask: the blocks of `ntcore.batch` as Dask tasks (`executor="dask"`).

`DaskExecutor` and `SchedulerUnreachableError` are imported on first use
(they import `distributed`), so loading the plugin stays cheap.
"""

import importlib

__all__ = ["CONNECT_TIMEOUT_S", "DaskExecutor", "SchedulerUnreachableError"]


def __getattr__(name):
  if name in __all__:
    return getattr(importlib.import_module("nt_dask.executor"), name)
  raise AttributeError(f"module 'nt_dask' has no attribute {name!r}")
