"""nt-dask's hook implementations: the `dask` executor.

`distributed` is imported when the executor is first built, not when the
plugin loads: every `ntcore` command and `stax` lookup loads the plugins.
"""

from ntcore.registry import ExecutorSpec, hookimpl


def dask_executor(**options):
  """One Dask task per block, on a cluster or a LocalCluster; survives lost
  workers."""
  from nt_dask.executor import DaskExecutor  # pylint: disable=import-outside-toplevel
  return DaskExecutor(**options)


@hookimpl
def register_executors():
  return [ExecutorSpec("dask", dask_executor)]
