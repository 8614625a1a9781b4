"""An ensemble of finite networks trained by full-batch gradient descent.

Used by `ntcore demo` (NT paper section 2.1, Figure 1) and the examples: the
members are initialized with `init_fn` from independent keys and trained on
the MSE loss `1/(2N) |f(x_train) - y_train|^2` (N = `y_train.size`) — the
loss whose gradient flow `predict.gradient_descent_mse_ensemble` solves in
closed form, so that step `s` corresponds to time `t = s`.

The training loop is one jitted program per chunk of steps: `lax.scan` over
the steps of one member, `lax.map` over the members in vmapped groups (one
group's weights stay in cache, which on a CPU is ~2x faster than vmapping
all members at once). Outputs are recorded at the requested steps inside
the scan, under a `lax.cond` whose predicate is shared by the members, so
the forward pass on the test inputs runs only at those steps.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Progress = Callable[[int, int, float], None]


class EnsembleRun(NamedTuple):
  """Outputs of every member at the recorded steps.

  Attributes:
    steps: `(R,)` the recorded step numbers, increasing.
    train: `(R, M, n_train)` outputs on the training inputs.
    test: `(R, M, n_test)` outputs on the test inputs.
    seconds: wall time of the training loop (compilation included).
  """

  steps: np.ndarray
  train: np.ndarray
  test: np.ndarray
  seconds: float


def init_ensemble(init_fn: Callable, key: jax.Array, n_members: int,
                  input_shape: Sequence[int], dtype: Any) -> Any:
  """Parameters of `n_members` networks, stacked on a leading axis."""
  # A Python loop of eager calls: each primitive compiles once and is reused
  # by every member, while a jitted (or vmapped) initializer compiles the
  # random number generators anew, 2-3x slower on a CPU.
  members = [init_fn(k, tuple(input_shape))[1]
             for k in jax.random.split(key, n_members)]
  return jax.tree_util.tree_map(
      lambda *a: jnp.stack(a).astype(dtype), *members)


def train_ensemble(init_fn: Callable, apply_fn: Callable,
                   x_train: np.ndarray, y_train: np.ndarray,
                   x_test: np.ndarray, *, key: jax.Array, n_members: int,
                   steps: int, learning_rate: float,
                   record: Sequence[int], dtype: Any = jnp.float32,
                   chunk: int = 100, group: int = 4,
                   progress: Optional[Progress] = None) -> EnsembleRun:
  """Trains `n_members` networks side by side; returns their recorded outputs.

  Args:
    init_fn: `init_fn(key, input_shape) -> (output_shape, params)`.
    apply_fn: `apply_fn(params, x)`, outputs `(n, 1)`.
    x_train: `(n_train, d)` training inputs.
    y_train: `(n_train, 1)` targets.
    x_test: `(n_test, d)` test inputs.
    key: PRNG key of the initializations.
    n_members: ensemble size `M`.
    steps: gradient descent steps.
    learning_rate: step size of the MSE loss `1/(2N) |f - y|^2`.
    record: step numbers in `[0, steps]` at which outputs are recorded.
    dtype: dtype of the parameters and data during training.
    chunk: steps per jitted call (the progress bar moves once per call).
    group: members vmapped together inside the `lax.map`.
    progress: `progress(done, total, seconds)` called after each chunk.

  Returns:
    `EnsembleRun` with outputs `(R, M, n)`, `R = len(set(record))`.

  Raises:
    ValueError: if a recorded step is outside `[0, steps]`.
  """
  rec = np.unique(np.asarray(record, dtype=int))
  if rec.size == 0 or rec[0] < 0 or rec[-1] > steps:
    raise ValueError(f"record must hold steps in [0, {steps}], got "
                     f"{list(record)!r}.")
  n_train = x_train.shape[0]
  x_all = jnp.asarray(np.concatenate([x_train, x_test]), dtype)
  x_tr = jnp.asarray(x_train, dtype)
  y_tr = jnp.asarray(y_train, dtype)
  n_chunks = -(-(steps + 1) // chunk)  # the last iteration records step `steps`
  slot = np.full(n_chunks * chunk, -1, dtype=np.int32)
  slot[rec] = np.arange(rec.size, dtype=np.int32)
  slot = jnp.asarray(slot)

  def loss(p):
    return 0.5 * jnp.mean((apply_fn(p, x_tr) - y_tr) ** 2)

  grad = jax.grad(loss)

  def member(p, buf, s0):
    def body(carry, i):
      p, buf = carry
      s = s0 + i
      buf = lax.cond(slot[s] >= 0,
                     lambda b: b.at[slot[s]].set(apply_fn(p, x_all)[:, 0]),
                     lambda b: b, buf)
      g = grad(p)
      p = jax.tree_util.tree_map(
          lambda a, d: jnp.where(s < steps, a - learning_rate * d, a), p, g)
      return (p, buf), None
    return lax.scan(body, (p, buf), jnp.arange(chunk))[0]

  @jax.jit
  def run_chunk(params, bufs, s0):
    return lax.map(lambda pb: member(*pb, s0), (params, bufs),
                   batch_size=group)

  params = init_ensemble(init_fn, key, n_members, x_train.shape, dtype)
  bufs = jnp.zeros((n_members, rec.size, x_all.shape[0]), dtype)
  start, reported = time.perf_counter(), -1
  for c in range(n_chunks):
    params, bufs = run_chunk(params, bufs, jnp.int32(c * chunk))
    jax.block_until_ready(bufs)
    done = min((c + 1) * chunk, steps)
    if progress is not None and done > reported:
      progress(done, steps, time.perf_counter() - start)
      reported = done
  out = np.asarray(bufs, dtype=np.float64).transpose(1, 0, 2)
  return EnsembleRun(rec, out[:, :, :n_train], out[:, :, n_train:],
                     time.perf_counter() - start)


def progress_bar(stream: Any = None, enabled: Optional[bool] = True
                 ) -> Progress:
  """A progress bar of the training steps on `stream` (default stderr).

  It is `ntcore.parallel`'s bar (click's `progressbar`): drawn in place on a
  terminal, and silent when `stream` is not one (redirected to a file or a
  pipe) or `enabled` is False.

  Args:
    stream: a text stream; a bound `write` method (`sys.stderr.write`) is
      taken as its stream.
    enabled: the switch (None or True: on a terminal; False: never).

  Returns:
    `progress(done, total, seconds)` for `train_ensemble`.
  """
  # pylint: disable=import-outside-toplevel
  from ntcore.parallel import _progress
  stream = getattr(stream, "__self__", stream)
  if stream is not None and not hasattr(stream, "write"):
    enabled = False  # a bare function: no terminal to draw on
    stream = None
  state: dict = {}

  def progress(done: int, total: int, seconds: float) -> None:
    del seconds  # click's bar keeps its own time
    bar = state.get("bar")
    if bar is None or bar.total != total:
      bar = state["bar"] = _progress.Progress(
          total, enabled=enabled, stream=stream,
          label="training the ensemble", unit="steps")
    bar.advance(done - bar.done)
    if done >= total:
      bar.close()

  return progress
