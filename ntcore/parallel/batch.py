"""`batch`: compute a kernel block by block, on every device, resumably.

`batch(kernel_fn, batch_size)(x1, x2, *args, **kwargs)` returns what
`kernel_fn(x1, x2, *args, **kwargs)` returns (a `Kernel`, arrays, a
namedtuple, or a list of them), computed as a grid of
`batch_size x batch_size` blocks (`_blocks.Grid`), so that the memory of the
intermediate computation is bounded by the block size, not by the data set
size (Neural Tangents issue #89). Beyond Neural Tangents' `nt.batch`:

* any `n1`, `n2` (the last block may be short);
* `x2=None` computes only the blocks on and above the diagonal and mirrors
  them (`T (T + 1) / 2` of `T^2` blocks);
* blocks run one per device in rounds (`_devices`), also across the
  processes of a `jax.distributed` run;
* `store=` keeps finished blocks on disk (`_store.BlockStore`), so that a
  killed run resumes and recomputes only the missing blocks;
* a progress bar on stderr;
* `executor=` hands the blocks to another executor (`executor.py`): `"dask"`
  (the `nt-dask` plugin) runs one Dask task per block on a cluster.

As in Neural Tangents, `x1` and `x2` may be pytrees of arrays (the list
`[xa, xb]` of a network that starts with `stax.parallel`; every leaf is cut
along the batch axis, see `_split`) and may differ beyond the batch axis,
and list outputs (a network that ends with `parallel`) are put together
output by output. When batching leaves a single block on one device with no
store, `batched` is `kernel_fn` itself. Called under `jax.jit`, `jax.vmap`
or `jax.grad` (inputs or arguments are tracers), the blocks are computed in
the enclosing trace, serially, and assembled with `jax.numpy`: the same
numbers as the concrete, single-device path, without store, progress bar
or device placement.
"""

from __future__ import annotations

import functools
import json
import os
import types
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.errors import BatchError
from ntcore.kernel import Kernel
from ntcore.kernel_fn import KernelFn
from ntcore.parallel import (_assemble, _call, _devices, _outputs, _progress,
                             _split, _store, distributed)
from ntcore.parallel import executor as _executor
from ntcore.parallel._blocks import Block, Grid
from ntcore.parallel._local import LocalExecutor

StoreLike = Union[None, str, "os.PathLike", _store.BlockStore]


def batch(kernel_fn: Callable[..., Any], batch_size: int = 0,
          device_count: int = -1, store_on_device: bool = True, *,
          store: StoreLike = None, progress: Optional[bool] = None,
          executor: "str | _executor.Executor | None" = None,
          assemble: bool = True) -> Callable[..., Any]:
  """Returns `kernel_fn` computed in blocks, over devices, resumably.

  Works for any `kernel_fn(x1, x2=None, *args, **kwargs)` whose outputs are
  kernels between the examples of `x1` and `x2` (`(n1, n2, ...)`) and
  per-example quantities (`cov1`, `cov2`): analytic `stax` kernel functions,
  `nt.empirical_kernel_fn(f)` (`args` are `get, params`) and
  `nt.monte_carlo_kernel_fn(...)`. Examples must not interact (no
  `diagonal_batch=False` output). `x1` and `x2` are arrays or pytrees of
  arrays (`[xa, xb]` for a multi-input network), cut along the batch axis
  only; outputs may be lists (one per output of a multi-output network).

  The batched function can be traced: under `jax.jit`, `jax.vmap` or
  `jax.grad` the blocks are computed in the trace (see the module
  docstring), and with `batch_size=0` on one device it is `kernel_fn`.

  Args:
    kernel_fn: the function to batch; it is called on blocks of `x1` and
      `x2` cut along the input batch axis.
    batch_size: examples per block side; each device computes one
      `batch_size x batch_size` block at a time. Need not divide `n1`, `n2`.
      0: one block per device (`n1 / devices` rows, all columns).
    device_count: -1: all devices (all processes' under `jax.distributed`);
      0: the default device only; `k`: the first `k` local devices.
    store_on_device: return the result on the default device (True) or
      keep it in host memory, on the CPU device (False). Blocks are gathered
      on the host either way, so device memory holds one block at a time.
    store: a directory (or a `BlockStore`) for finished blocks. A run that
      finds blocks of the same computation there loads them and computes
      only the missing ones; a store of a different computation raises
      `BlockStoreError`. Use one store per computation.
    progress: a progress bar on stderr (blocks done / total, ETA), drawn
      only when stderr is a terminal; False: never (and no status lines
      from the executor).
    executor: who computes the blocks: None or "local" (this process, on
      the devices above), a name registered by a plugin ("dask", from
      `nt-dask`: one Dask task per block, on the active
      `distributed.Client` or a local cluster), or an executor object
      (`ntcore.parallel.executor.Executor`). Another executor than the
      local one needs `batch_size > 0` and concrete inputs; give it a
      `store=` on a file system its workers share, so that finished blocks
      are written there by the workers (and survive a killed client).
    assemble: False (with `store=`): only fill the store; the call returns
      None, and the process never holds more than the blocks in flight, so
      a kernel larger than memory can be computed. Read it back block by
      block with `predict.KernelOperator.from_store(store, get)`.

  Returns:
    `batched(x1_or_kernel, x2=None, *args, **kwargs)` with the same result
    as `kernel_fn`. A `Kernel` (or list of them) as first argument is passed
    to `kernel_fn` unbatched. Its attribute `last_run` holds the counts
    (`total`, `computed`, `loaded` blocks) of the latest call.

  Raises:
    BatchError: bad `batch_size` / `device_count`; inputs without a batch
      axis, or whose arrays disagree on the number of examples; a kernel
      that cannot be assembled from blocks; `store=` while being traced.
    BlockStoreError: `store` holds another computation.
    ExecutorNotInstalledError: `executor` names an executor that no loaded
      plugin registers; the message names the plugin to install.
  """
  if (not isinstance(batch_size, (int, np.integer)) or isinstance(
      batch_size, bool) or batch_size < 0):
    raise BatchError(f"batch_size={batch_size!r}; pass a non-negative int "
                     f"(0: one block per device).")
  if (not isinstance(device_count, (int, np.integer)) or isinstance(
      device_count, bool) or device_count < -1):
    raise BatchError(f"device_count={device_count!r}; pass -1 (all devices), "
                     f"0 (the default device) or a positive int.")
  if store is not None and not isinstance(store, _store.BlockStore):
    store = _store.BlockStore(store)
  runner = _executor.resolve(executor)
  local = isinstance(runner, LocalExecutor)
  name = getattr(runner, "name", None) or repr(runner)
  if not local and batch_size == 0:
    raise BatchError(_EXECUTOR_NEEDS_BLOCKS.format(executor=name))
  if not assemble and (store is None or batch_size == 0):
    raise BatchError(
        "assemble=False keeps the kernel only in the block store, so it "
        "needs store= and a batch_size > 0, e.g. "
        "batch(kernel_fn, 1000, store='kernel_blocks', assemble=False).")
  runners: dict = {}

  @functools.wraps(kernel_fn, assigned=("__module__", "__name__",
                                        "__qualname__", "__doc__"),
                   updated=())
  def batched(x1_or_kernel, x2=None, *args, **kwargs):
    if _is_kernel_input(x1_or_kernel):
      return kernel_fn(x1_or_kernel, x2, *args, **kwargs)
    traced = _split.is_traced((x1_or_kernel, x2, args, kwargs))
    if traced and store is not None:
      raise BatchError(_STORE_TRACED)
    if traced and not local:
      raise BatchError(_EXECUTOR_TRACED.format(executor=name))
    devices = _devices.select_devices(int(device_count))
    if batch_size == 0 and len(devices) == 1 and store is None:
      # NT's batch_size=0 on one device: kernel_fn itself, as traceable.
      batched.last_run = dict(total=1, computed=1, loaded=0)
      return _place(kernel_fn(x1_or_kernel, x2, *args, **kwargs),
                    store_on_device or traced)
    run = _Run(kernel_fn, int(batch_size), devices, store_on_device, store,
               progress, runners, traced, x1_or_kernel, x2, args, kwargs,
               runner, assemble)
    out = run.compute()
    batched.last_run = run.counts
    return out

  batched.last_run = None
  return batched


_STORE_TRACED = (
    "store= keeps finished blocks on disk, which needs concrete inputs, but "
    "the batched kernel function is being traced (called under jax.jit, "
    "jax.vmap or jax.grad, so its inputs or arguments are tracers). Call it "
    "outside the transformation to use store=, or batch without store= "
    "under the transformation.")

_EXECUTOR_TRACED = (
    "executor={executor!r} computes blocks outside this process, which needs "
    "concrete inputs, but the batched kernel function is being traced "
    "(called under jax.jit, jax.vmap or jax.grad). Call it outside the "
    "transformation, or use the local executor under it.")

_EXECUTOR_NEEDS_BLOCKS = (
    "executor={executor!r} runs one task per block, but batch_size=0 asks "
    "for one block per local device. Pass a batch_size > 0 (examples per "
    "block side), e.g. batch(kernel_fn, 256, executor={executor!r}).")


def _place(out, on_device: bool):
  """`out` as it is, or (`store_on_device=False`) moved to the host's CPU
  device; a generator of estimates is moved estimate by estimate."""
  if on_device:
    return out
  cpu = jax.local_devices(backend="cpu")[0]
  if isinstance(out, types.GeneratorType):
    return (jax.device_put(o, cpu) for o in out)
  return jax.device_put(out, cpu)


class _NoAssembler:
  """Stands in for `_assemble.Assembler` when blocks go to the store only."""

  def put(self, block, arrays) -> None:
    del block, arrays


def _is_kernel_input(x) -> bool:
  if isinstance(x, (list, tuple)):
    return bool(x) and all(_is_kernel_input(k) for k in x)
  return isinstance(x, Kernel)


class _Run:
  """One call of a batched kernel function (not the single-block case)."""

  def __init__(self, kernel_fn, batch_size, devices, store_on_device,
               store, progress, runners, traced, x1, x2, args, kwargs,
               executor, assemble=True):
    self.kernel_fn = kernel_fn
    self.batch_size = batch_size
    self.devices = devices
    self.store_on_device = store_on_device
    self.store = store
    self.progress = progress
    self.runners = runners
    self.traced = traced
    self.executor = executor
    self.assemble = assemble
    self.original = (x1, x2, args, kwargs)
    self.symmetric = _split.is_none(x2)
    axis = 0
    if isinstance(kernel_fn, KernelFn):
      axis = kernel_fn.input_axes()[0] or 0
    self.axis = axis
    host = not traced
    self.x1 = _split.canonical(x1, "x1", host)
    self.x2 = self.x1 if self.symmetric else _split.canonical(x2, "x2", host)
    self.n1 = _split.count(self.x1, axis, "x1")
    self.n2 = _split.count(self.x2, axis, "x2")
    self.get = args[0] if args else kwargs.get("get")
    self.per_example, kwargs = self._split_per_example(kwargs)
    self.call = _call.BlockCall(kernel_fn, args, kwargs)
    self.counts = None

  def _split_per_example(self, kwargs):
    """NT's per-example keywords: a pair `(v1, v2)` of arrays with `n1` and
    `n2` leading entries is cut into blocks like `x1` and `x2`."""
    per_example, rest = {}, {}
    as_array = jnp.asarray if self.traced else np.asarray
    for key, value in kwargs.items():
      if (key != "rng" and isinstance(value, tuple) and len(value) == 2
          and _call.is_array(value[0])
          and np.shape(value[0])[:1] == (self.n1,)
          and (value[1] is None or (_call.is_array(value[1])
                                    and np.shape(value[1])[:1] == (self.n2,)))):
        v1 = as_array(value[0])
        per_example[key] = (v1, v1 if value[1] is None else
                            as_array(value[1]))
      else:
        rest[key] = value
    return per_example, rest

  def block_inputs(self, grid: Grid, block: Block):
    """`(x1_block, x2_block or None, per-example keywords)`, padded."""
    rows = grid.rows(block.i)
    cols = rows if block.diagonal else grid.cols(block.j)
    size2 = grid.b1 if block.diagonal else grid.b2
    x1 = _split.take_block(self.x1, self.axis, rows, grid.b1)
    x2 = (None if block.diagonal else
          _split.take_block(self.x2, self.axis, cols, grid.b2))
    extra = {key: (_split.take_block(v1, 0, rows, grid.b1),
                   _split.take_block(v2, 0, cols, size2))
             for key, (v1, v2) in self.per_example.items()}
    return (x1, x2, extra)

  # --- layout ---------------------------------------------------------------
  def _grid(self) -> Grid:
    if self.batch_size:
      b1 = min(self.batch_size, self.n1)
      b2 = b1 if self.symmetric else min(self.batch_size, self.n2)
    else:
      b1 = -(-self.n1 // len(self.devices))
      b2 = b1 if self.symmetric else self.n2
    return Grid(self.n1, self.n2, b1, b2, self.symmetric)

  def _diagonal_spatial(self, x1_block) -> Optional[bool]:
    """Layout of the bare arrays of an analytic kernel, from the `Kernel`
    it returns for `get=None` (traced only, not computed)."""
    if not isinstance(self.kernel_fn, KernelFn):
      return None
    kwargs = {k: v for k, v in self.call.arguments()[1].items() if k != "get"}
    kernel = jax.eval_shape(
        lambda x: self.kernel_fn(x, None, None, **kwargs), x1_block)
    flags = {k.diagonal_spatial for k in jax.tree_util.tree_leaves(
        kernel, is_leaf=lambda n: isinstance(n, Kernel))
             if isinstance(k, Kernel)}
    return flags.pop() if len(flags) == 1 else None

  def _layout(self, grid: Grid):
    """Output shapes of each kind of block, traced with `jax.eval_shape`."""
    shapes = {}
    if self.symmetric:
      shapes["d"] = jax.eval_shape(
          self.call, self.block_inputs(grid, Block(0, 0, True)),
          self.call.dynamic)
    if not self.symmetric or grid.shape[0] > 1:
      shapes["p"] = jax.eval_shape(
          self.call, self.block_inputs(grid, Block(0, grid.shape[1] - 1,
                                                   False)),
          self.call.dynamic)
    template = shapes["d" if self.symmetric else "p"]
    layout = None
    if any(not isinstance(n, Kernel) for n in jax.tree_util.tree_leaves(
        template, is_leaf=lambda n: isinstance(n, Kernel))):
      layout = self._diagonal_spatial(
          _split.take_block(self.x1, self.axis, grid.rows(0), grid.b1))
    single = self.get if isinstance(self.get, str) else None
    leaves = {kind: _outputs.describe(s, single, layout)
              for kind, s in shapes.items()}
    return shapes, leaves

  # --- the computation ------------------------------------------------------
  def compute(self):
    grid = self._grid()
    if (grid.shape == (1, 1) and len(self.devices) == 1
        and self.store is None and self.assemble and isinstance(self.executor, LocalExecutor)):
      # One block: the kernel function itself, on the inputs as given.
      x1, x2, args, kwargs = self.original
      self.counts = dict(total=1, computed=1, loaded=0)
      return _place(self.kernel_fn(x1, x2, *args, **kwargs),
                    self.store_on_device or self.traced)
    shapes, leaves = self._layout(grid)
    kind = "d" if self.symmetric else "p"
    template, tleaves = shapes[kind], leaves[kind]
    mirror = self.symmetric and all(
        l.mirror is not None for l in tleaves if l.role == _outputs.PAIR)
    blocks = grid.blocks()
    if self.symmetric and not mirror:
      t = grid.shape[0]
      blocks += [Block(i, j, False) for i in range(t) for j in range(i)]
    if self.assemble:
      assembler = _assemble.Assembler(
          grid, tleaves, jax.tree_util.tree_leaves(template),
          _pair_index(tleaves, leaves.get("p")) if self.symmetric else {},
          mirror, traced=self.traced)
    else:  # the store only: no n1 x n2 buffers
      assembler = _NoAssembler()

    loaded = []
    if self.store is not None:
      distributed.open_store(self.store, self._manifest(grid, shapes, mirror))
      done = self.store.done()
      for block in (b for b in blocks if b.name in done):
        # None: a damaged file (warned about), computed again below.
        arrays = self.store.load(block.name, jax.tree_util.tree_leaves(
            shapes["d" if block.diagonal else "p"]))
        if arrays is not None:
          assembler.put(block, arrays)
          loaded.append(block)
    have = {b.name for b in loaded}
    pending = [b for b in blocks if b.name not in have]
    # Drawn on a terminal only, unless progress=False.
    messages = (self.progress is not False and distributed.is_writer()
                and not self.traced)
    bar = _progress.Progress(len(blocks), len(loaded), enabled=messages)

    def report(block, leaves, save):
      assembler.put(block, leaves)
      if save and self.store is not None and distributed.is_writer():
        self.store.save(block.name, leaves)
      bar.advance(1)

    job = _executor.Job(
        pending, len(blocks), self.store, self.kernel_fn, self.call,
        lambda b: self.block_inputs(grid, b),
        lambda b: jax.tree_util.tree_leaves(shapes["d" if b.diagonal
                                                   else "p"]),
        report, messages=messages, local=self)
    try:
      if pending:
        self.executor.run(job)
    finally:
      bar.close()
    if job.missing():
      missing = job.missing()
      raise _executor.ExecutorError(
          f"The executor {self.executor!r} returned with {len(missing)} of "
          f"{len(pending)} blocks not computed (e.g. {missing[0].name}); "
          f"the kernel is incomplete. Run the same call again to compute "
          f"the missing blocks" + (" (the others are in the store)."
                                   if self.store is not None else "."))
    self.counts = dict(total=len(blocks), computed=len(pending),
                       loaded=len(loaded))
    if not self.assemble:
      return None
    return self._finish(template, assembler.buffers)

  def _manifest(self, grid: Grid, shapes: dict, mirror: bool) -> dict:
    """What identifies this computation in a block store: sizes, `get`,
    fingerprints of the inputs, the arguments and the network (the jaxpr
    of one block), dtypes and the ntcore version."""
    fn = self.kernel_fn
    name = (f"{getattr(fn, '__module__', type(fn).__module__)}."
            f"{getattr(fn, '__qualname__', type(fn).__qualname__)}")
    per_example = [a for pair in self.per_example.values() for a in pair]
    inputs = [self.x1] + ([] if self.symmetric else [self.x2])
    # The tree structure of multi-input data (a list of arrays) is part of
    # the computation; a single array keeps its earlier fingerprint.
    structure = ("" if all(isinstance(x, np.ndarray) for x in inputs) else
                 repr([jax.tree_util.tree_structure(x) for x in inputs]))
    first = jax.tree_util.tree_leaves(self.x1)[0]
    kind = "d" if self.symmetric else "p"
    example = self.block_inputs(grid, Block(0, 0, self.symmetric))
    network = _store.network_fingerprint(self.call, example, self.call.dynamic)
    total = len(grid.blocks())
    if self.symmetric and not mirror:
      total += grid.shape[0] * (grid.shape[0] - 1) // 2
    return dict(
        n1=grid.n1, n2=grid.n2, b1=grid.b1, b2=grid.b2,
        symmetric=grid.symmetric, mirror=mirror, total=total,
        batch_axis=self.axis % first.ndim,
        get=json.loads(json.dumps(self.get, default=str)),
        inputs=_store.fingerprint(
            jax.tree_util.tree_leaves(inputs) + per_example, structure),
        arguments=_store.fingerprint(
            self.call.dynamic, repr([v for _, v in self.call.static])),
        # Untraceable functions are known by name only.
        network=network or f"untraced {name}",
        function=name,
        dtype=dict(
            inputs=sorted({str(np.asarray(a).dtype) for a in
                           jax.tree_util.tree_leaves(inputs)}),
            blocks=sorted({str(s.dtype) for s in
                           jax.tree_util.tree_leaves(shapes[kind])})),
        version=_store.ntcore_version(),
        blocks={kind: [[list(s.shape), str(s.dtype)]
                       for s in jax.tree_util.tree_leaves(tree)]
                for kind, tree in sorted(shapes.items())})

  def _finish(self, template, buffers):
    if self.traced:
      arrays = list(buffers)
    elif self.store_on_device:
      arrays = [jnp.asarray(b) for b in buffers]
    else:
      cpu = jax.local_devices(backend="cpu")[0]
      arrays = [jax.device_put(b, cpu) for b in buffers]
    out = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(template), arrays)
    out = _outputs.fix_static_shapes(out, self.n1, self.n2)
    return iter(out) if self.call.as_generator else out


def _pair_index(template_leaves, pair_leaves) -> dict:
  """Where each PAIR leaf of the diagonal blocks' tree sits in the tree of
  an off-diagonal block (which also holds `cov2`)."""
  if pair_leaves is None:
    return {}
  keys = [l.key for l in pair_leaves]
  index = {}
  for t, leaf in enumerate(template_leaves):
    if leaf.role == _outputs.PAIR:
      if leaf.key not in keys:
        raise BatchError(
            f"kernel_fn(x1, x2) has no {leaf.key} while kernel_fn(x1, None) "
            f"has; ntcore.batch needs the same kernels from both.")
      index[t] = keys.index(leaf.key)
  return index
