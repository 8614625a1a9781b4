"""The plugin contract: the hooks an ntcore plugin may implement.

Project name `"ntcore"`, entry-point group `ntcore`. None of these hooks is
`firstresult`: the core collects every plugin's answer and decides what to do
with duplicates, so behaviour never depends on install order. Specs only
grow: an argument may be added, never renamed or removed.
"""

import pluggy

hookspec = pluggy.HookspecMarker("ntcore")
hookimpl = pluggy.HookimplMarker("ntcore")


@hookspec
def register_layers():
  """Called once when the layer registry is built; returns `list[LayerSpec]`.

  Each spec names a layer factory (`Dense`, `Relu`, ...) that `ntcore.stax`
  then resolves by name. Not firstresult.
  """


@hookspec
def register_estimators():
  """Called once when the estimator registry is built; returns `list[EstimatorSpec]`.

  Estimators are top-level functions such as `monte_carlo_kernel_fn`,
  `empirical_kernel_fn` or `taylor_expand`, resolved as `ntcore.<name>`.
  Not firstresult.
  """


@hookspec
def register_ode_solvers():
  """Called once when the solver registry is built; returns `list[OdeSolverSpec]`.

  Named solvers for `ntcore.predict.gradient_descent`. Not firstresult.
  """


@hookspec
def register_executors():
  """Called once when the executor registry is built; returns `list[ExecutorSpec]`.

  Named executors for `ntcore.batch(..., executor=name)` and `ntcore kernel
  --executor name`: each spec's factory builds an object that runs the
  pending blocks of a batched kernel (see `ntcore.parallel.executor`).
  Not firstresult.
  """


@hookspec
def register_commands(cli):
  """Called when the `ntcore` CLI starts, with its click group; returns None.

  Add subcommands with `cli.add_command(...)`. Not firstresult.
  """
