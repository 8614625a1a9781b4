"""Gradient descent on any loss, in function space, by integrating an ODE.

The core defines the `OdeSolver` protocol and nothing more: solvers arrive by
name through the `register_ode_solvers` hook (the `nt-ode` plugin registers
diffrax's), and `gradient_descent` uses the one it is told to — `solver=` a
name, a qualified name (`"nt-ode:dopri5"`) or an `OdeSolver` object; by
default `DEFAULT_SOLVER`, never whichever plugin loaded last.

The dynamics are those of NT's `predict.gradient_descent`: function-space
gradient flow of the linearized network (Lee et al. 2019, "Wide Neural
Networks of Any Depth Evolve as Linear Models Under Gradient Descent") and
its heavy-ball momentum variant. With the NTK `K` and
`g = d loss(f_train, y_train) / d f_train`,

    gradient flow:  df/dt = -K g                     (t in units of lr)
    momentum m:     df/dt = q,  dq/dt = -K g - (1 - m) / sqrt(lr) q
                                                     (t in units of sqrt(lr))

for the train outputs (`K = k_train_train`) and the test outputs
(`K = k_test_train`) alike.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, Mapping, Optional, Protocol, Union
from typing import runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from ntcore import errors, registry
from ntcore.dynamics import _checks
from ntcore.dynamics._axes import Axes, Layout
from ntcore.dynamics._linalg import as_float, is_concrete
from ntcore.registry import providers

Array = Any
PyTree = Any
ArrayOrScalar = Union[None, int, float, Array]

DEFAULT_SOLVER = "dopri5"
"""The solver `gradient_descent` uses when `solver=None` (from `nt-ode`):
adaptive Dormand-Prince 5(4), the method of NT's
`jax.experimental.ode.odeint`."""

RTOL = ATOL = 1.4e-8
"""Default tolerances: those of NT's `odeint`, about sqrt(float64 eps)."""


@runtime_checkable
class OdeSolver(Protocol):
  """`solver(fn, y0, ts, *, rtol, atol, **options) -> ys`: integrates an ODE.

  Solves `dy/dt = fn(t, y)` from `y(ts[0]) = y0` and returns `y` at every
  time in `ts`.

  Args:
    fn: the vector field `fn(t, y) -> dy/dt`, with `t` a scalar and `dy/dt`
      a pytree of `y`'s structure, shapes and dtypes.
    y0: the state at `ts[0]`: a pytree of arrays (`None` subtrees are empty).
    ts: `(n,)` times, non-decreasing (repeats allowed), all finite; `ts[0]`
      is the time of `y0`.
    rtol, atol: tolerances of the local error per step, relative to the size
      of `y` and absolute. A fixed-step solver may ignore them and must then
      say so in its docstring.
    **options: solver-specific settings (`max_steps`, ...); an unknown one
      raises `TypeError`.

  Returns:
    `ys`: `y0`'s structure, each leaf stacked along a new leading axis of
    length `n`, `ys[i] = y(ts[i])` (so `ys[0] = y0`).

  Solvers are called under `jax.jit`: they must be traceable and must not
  branch in Python on the values of `y0` or `ts`. A solver that cannot reach
  the last time within its step budget raises at run time rather than
  returning a partial answer.
  """

  def __call__(self, fn: Callable[[Array, PyTree], PyTree], y0: PyTree,
               ts: Array, *, rtol: float, atol: float,
               **options: Any) -> PyTree:
    ...


@dataclasses.dataclass(frozen=True)
class ODEState:
  """The state of the function-space ODE; a pytree.

  Attributes:
    fx_train: train-set outputs, `y_train`'s shape.
    fx_test: test-set outputs, or None.
    qx_train: train-set momentum (auxiliary variable), or None without it.
    qx_test: test-set momentum, or None.
  """

  fx_train: Optional[Array] = None
  fx_test: Optional[Array] = None
  qx_train: Optional[Array] = None
  qx_test: Optional[Array] = None

  def replace(self, **changes) -> "ODEState":
    """Returns a copy with `changes` applied (the state itself is frozen)."""
    return dataclasses.replace(self, **changes)

  def asdict(self) -> dict[str, Any]:
    """`{field: value}` in field order, the arrays not copied (as NT)."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  def astuple(self) -> tuple[Any, ...]:
    """`(fx_train, fx_test, qx_train, qx_test)`, the arrays not copied."""
    return tuple(getattr(self, f.name) for f in dataclasses.fields(self))


jax.tree_util.register_dataclass(
    ODEState, data_fields=[f.name for f in dataclasses.fields(ODEState)],
    meta_fields=[])


class PredictFnODE(Protocol):
  """`predict_fn(t, fx_train_or_state_0, fx_test_0, k_test_train)` of
  `gradient_descent`."""

  def __call__(self, t: ArrayOrScalar = None,
               fx_train_or_state_0: Union[ArrayOrScalar, ODEState] = 0.,
               fx_test_0: ArrayOrScalar = None,
               k_test_train: Optional[Array] = None
               ) -> Union[Array, tuple[Array, Array], ODEState]:
    ...


def get_solver(solver: Union[None, str, OdeSolver] = None) -> OdeSolver:
  """The `OdeSolver` that `solver=` names.

  Args:
    solver: None for `DEFAULT_SOLVER`, a registered name (`"tsit5"`,
      `"nt-ode:tsit5"`), or an object following `OdeSolver`.

  Raises:
    OdeSolverNotInstalledError: no loaded plugin registers the name.
    LayerNameClashError: two plugins register the bare name.
  """
  if solver is not None and not isinstance(solver, str):
    if not callable(solver):
      raise TypeError(f"solver= takes a solver name or an OdeSolver object "
                      f"(a callable), got {type(solver).__name__}.")
    return solver
  name = DEFAULT_SOLVER if solver is None else solver
  solvers = registry.get_registry().ode_solvers
  try:
    return solvers.get(name).solver
  except errors.OdeSolverNotInstalledError:
    pass
  installed = []
  for plugin in solvers.plugins():
    names = sorted(s.name for s in solvers.specs() if s.plugin == plugin)
    installed.append(f"{plugin} ({', '.join(names)})")
  close = difflib.get_close_matches(name.rpartition(":")[2],
                                    set(solvers.by_name), n=3)
  # Which plugin to install: the provider table's, for the name or else for
  # the default solver (nt-ode).
  known = providers.provided("ode_solvers")
  dist = known.get(name.rpartition(":")[2], known.get(DEFAULT_SOLVER))
  raise errors.OdeSolverNotInstalledError(
      errors.ODE_SOLVER_NOT_INSTALLED.format(
          name=name, default=" (the default)" if solver is None else "",
          installed="; ".join(installed) or "none",
          suggest=f" Did you mean {', '.join(close)}?" if close else "",
          standard=", ".join(providers.names_of("ode_solvers", dist)),
          dist=dist,
          install=providers.install_line(dist)))


def gradient_descent(
    loss: Callable[[Array, Array], Array],
    k_train_train: Array,
    y_train: Array,
    learning_rate: float = 1.,
    momentum: Optional[float] = None,
    trace_axes: Axes = (-1,),
    solver: Union[None, str, OdeSolver] = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    solver_options: Optional[Mapping[str, Any]] = None,
) -> PredictFnODE:
  """Outputs of an infinitely wide network trained by gradient descent.

  NT's `predict.gradient_descent`, solved by a registered `OdeSolver` (see the
  module docstring for the ODE). For MSE, `gradient_descent_mse` has the
  closed form and is faster.

  Args:
    loss: `loss(fx_train, y_train) -> scalar`, treating the batch and output
      axes symmetrically.
    k_train_train: NTK of the training inputs, `zip(y_train.shape,
      y_train.shape)` without the `trace_axes` pairs: `(n, n)` for the
      default `(n, k)` outputs.
    y_train: training targets, `(n, k)` by default.
    learning_rate: step size; times are in its units (its square root's with
      momentum, as in NT).
    momentum: None for plain gradient flow, else the momentum coefficient.
    trace_axes: output axes the kernel is block-diagonal (identity) along.
    solver: a solver name registered through `register_ode_solvers`, or an
      `OdeSolver`; None means `DEFAULT_SOLVER` ("dopri5" from `nt-ode`).
    rtol, atol: the solver's tolerances (NT's odeint: 1.4e-8 both).
    solver_options: extra keyword arguments for the solver (`max_steps`).

  Returns:
    `predict_fn(t=None, fx_train_or_state_0=0., fx_test_0=None,
    k_test_train=None)`: the train outputs, the test outputs, both as a tuple,
    or an `ODEState` if one was passed, each with `t.shape` leading axes.

  Raises:
    OdeSolverNotInstalledError: `solver` is not registered (without `nt-ode`,
      the default is not), with the install line.
    ShapeError: the kernel does not fit `y_train` and `trace_axes`.
  """
  _checks.check_learning_rate(learning_rate, "gradient_descent")
  _checks.check_momentum(momentum, "gradient_descent")
  ode_solver = get_solver(solver)
  options = dict(solver_options or {})
  k_train_train, y_train = as_float(k_train_train), jnp.asarray(y_train)
  layout = Layout.of(y_train, trace_axes)
  layout.check_kernel(k_train_train, "k_train_train", square=True)
  dtype = k_train_train.dtype
  odd = tuple(range(1, k_train_train.ndim, 2))
  trace = layout.trace_axes
  non_trace = tuple(a for a in range(y_train.ndim) if a not in trace)
  last = tuple(range(-len(trace), 0))
  if momentum is None:
    time_scale, friction = learning_rate, None
  else:
    time_scale = learning_rate ** 0.5
    friction = (1. - momentum) / time_scale

  def apply_kernel(k, g):
    return jnp.moveaxis(jnp.tensordot(k, g, (odd, non_trace)), last, trace)

  @jax.jit
  def integrate(k_train_train, y_train, k_test_train, state_0, ts):
    grad_loss = jax.grad(lambda fx: loss(fx, y_train))

    def vector_field(t, state):
      del t  # the dynamics are autonomous
      g = grad_loss(state.fx_train)
      df_train = -apply_kernel(k_train_train, g)
      df_test = (None if state.fx_test is None
                 else -apply_kernel(k_test_train, g))
      if friction is None:
        return ODEState(df_train, df_test)
      dq_test = (None if state.qx_test is None
                 else df_test - friction * state.qx_test)
      return ODEState(state.qx_train, state.qx_test,
                      df_train - friction * state.qx_train, dq_test)

    return ode_solver(vector_field, state_0, ts, rtol=rtol, atol=atol,
                      **options)

  def predict_fn(t: ArrayOrScalar = None,
                 fx_train_or_state_0: Union[ArrayOrScalar, ODEState] = 0.,
                 fx_test_0: ArrayOrScalar = None,
                 k_test_train: Optional[Array] = None
                 ) -> Union[Array, tuple[Array, Array], ODEState]:
    """Outputs at time[s] `t` (any shape, flattened order non-decreasing).

    Args:
      t: times in units of `learning_rate` (`sqrt(learning_rate)` with
        momentum); finite, non-negative, non-decreasing when flattened.
      fx_train_or_state_0: train outputs at `t = 0` (None: not returned, and
        taken as 0 for the dynamics), or a whole `ODEState` to resume from.
      fx_test_0: test outputs at `t = 0`, or None for no test predictions;
        must be None when an `ODEState` is passed.
      k_test_train: NTK between test and training inputs; required with test
        outputs.

    Returns:
      `fx_train_t`, `fx_test_t`, `(fx_train_t, fx_test_t)`, or an `ODEState`
      when one was passed; leading axes `t.shape`.

    Raises:
      PredictArgumentError: no outputs asked for, test outputs without
        `k_test_train`, momentum variables without momentum, or times that
        are infinite, negative or decreasing.
      ShapeError: outputs or `k_test_train` that do not fit `y_train`.
    """
    is_state = isinstance(fx_train_or_state_0, ODEState)
    state = (fx_train_or_state_0 if is_state
             else ODEState(fx_train_or_state_0, fx_test_0))
    _check_inputs(is_state, state, fx_test_0, k_test_train, momentum)
    ts = jnp.asarray(_check_times(t), dtype) * time_scale
    t_shape = ts.shape
    ts = jnp.concatenate([jnp.zeros((1,), dtype), ts.reshape(-1)])
    test_shape = k_test = None
    if state.fx_test is not None:
      k_test = as_float(k_test_train)
      test_shape = layout.output_shape(
          layout.check_kernel(k_test, "k_test_train", square=False))
    state_0 = _initial_state(state, y_train.shape, test_shape, dtype,
                             momentum is not None)
    ys = integrate(k_train_train, y_train, k_test, state_0, ts)
    ys = jax.tree.map(lambda y: y[1:].reshape(t_shape + y.shape[1:]), ys)
    if is_state:
      return ys
    if fx_test_0 is None:
      return ys.fx_train
    if fx_train_or_state_0 is None:
      return ys.fx_test
    return ys.fx_train, ys.fx_test

  return predict_fn


def _check_inputs(is_state, state, fx_test_0, k_test_train, momentum):
  if is_state and fx_test_0 is not None:
    raise errors.PredictArgumentError(
        "fx_test_0 must be None when an ODEState is passed: the state's "
        "fx_test holds the test outputs.")
  if state.fx_train is None and state.fx_test is None:
    raise errors.PredictArgumentError(
        "Both the train and the test outputs at t = 0 are None, so there is "
        "nothing to predict; pass fx_train_0 (0. is fine) or fx_test_0.")
  if state.fx_test is not None and k_test_train is None:
    raise errors.PredictArgumentError(
        "Test predictions need the test-train kernel: pass k_test_train "
        "together with fx_test_0.")
  if momentum is None and (state.qx_train is not None
                           or state.qx_test is not None):
    raise errors.PredictArgumentError(
        "The ODEState holds momentum variables (qx_train, qx_test), but "
        "gradient_descent was built with momentum=None; pass momentum=... "
        "or a state without them.")


def _check_times(t):
  """Validates concrete times; traced ones go to the solver unchecked."""
  if t is None:
    raise errors.PredictArgumentError(errors.ODE_INFINITE_TIME.format(t=None))
  if not is_concrete(t):
    return t
  values = np.asarray(t, dtype=np.float64).reshape(-1)
  if not np.all(np.isfinite(values)):
    raise errors.PredictArgumentError(
        errors.ODE_INFINITE_TIME.format(t=values[~np.isfinite(values)][0]))
  if values.size and (values.min() < 0 or np.any(np.diff(values) < 0)):
    raise errors.PredictArgumentError(
        f"Times t must be non-negative and non-decreasing (in flattened "
        f"order), got {values.tolist()}; the ODE runs forward from t = 0.")
  return t


def _initial_state(state, train_shape, test_shape, dtype, momentum):
  """`state` with every array at its full shape and `dtype`, momenta 0 if
  absent (NT: a None `fx_train` evolves from 0 and is not returned)."""

  def full(x, shape, name):
    x = 0. if x is None else x
    try:
      ok = np.broadcast_shapes(np.shape(x), shape) == shape
    except ValueError:
      ok = False
    if not ok:
      raise errors.ShapeError(
          f"{name} has shape {np.shape(x)}, which does not broadcast to "
          f"{shape}, the shape of the outputs it starts.")
    return jnp.broadcast_to(jnp.asarray(x, dtype), shape)

  fx_train = full(state.fx_train, train_shape, "fx_train")
  fx_test = (None if test_shape is None
             else full(state.fx_test, test_shape, "fx_test"))
  if not momentum:
    return ODEState(fx_train, fx_test)
  qx_test = (None if test_shape is None
             else full(state.qx_test, test_shape, "qx_test"))
  return ODEState(fx_train, fx_test,
                  full(state.qx_train, train_shape, "qx_train"), qx_test)
