"""nt-dask: the blocks of `ntcore.batch` as Dask tasks (`executor="dask"`).

`DaskExecutor` and `SchedulerUnreachableError` are imported on first use
(they import `distributed`), so loading the plugin stays cheap.
"""

from ntcore.registry.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "CONNECT_TIMEOUT_S": "nt_dask.executor",
    "DaskExecutor": "nt_dask.executor",
    "SchedulerUnreachableError": "nt_dask.executor",
})
