"""Running blocks on devices: one block per device per round.

With one device the kernel function is simply called on each block (it jits
itself). So it is when the batched function is being traced (under
`jax.jit`, `vmap`, `grad`): the blocks become part of the enclosing
computation, whose compiler places them. With several devices, the blocks
of a round are stacked along a leading axis, laid out one per device with a
`NamedSharding` over a 1-d mesh, and `jax.shard_map` runs the kernel
function on each device's block: no communication, each device holds only
its own block's intermediates.

The mesh spans `jax.devices()`, i.e. the devices of every process when
`jax.distributed` is initialized: each process then computes the blocks that
land on its own devices, and `process_allgather` brings every block of the
round to every process (`distributed.allgather`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ntcore.errors import BatchError
from ntcore.parallel import distributed

_AXIS = "blocks"


def select_devices(device_count: int) -> list:
  """The devices blocks run on.

  Args:
    device_count: -1 for all devices (of every process under
      `jax.distributed`), 0 for the default device only (no sharding), `k`
      for the first `k` local devices.

  Raises:
    BatchError: more devices asked for than there are, or `k > 0` in a
      multi-process run.
  """
  if device_count == -1:
    return list(jax.devices())
  if device_count == 0:
    return [jax.local_devices()[0]]
  if jax.process_count() > 1:
    raise BatchError(
        f"device_count={device_count} in a run of {jax.process_count()} "
        f"processes; a multi-process run computes on every device of every "
        f"process. Pass device_count=-1.")
  local = jax.local_devices()
  if device_count > len(local):
    raise BatchError(
        f"device_count={device_count}, but only {len(local)} devices are "
        f"visible ({local[0].platform}). Pass device_count=-1 for all of "
        f"them, or a number up to {len(local)}.")
  return list(local[:device_count])


def run_direct(call: Callable, inputs: Sequence[Any], dynamic: Any,
               host: bool = True) -> list[list[Any]]:
  """Calls `call(block_inputs, dynamic)` block after block.

  Returns each block's leaves, as host arrays when `host`; else as they
  come (tracers, when the batched function is being traced).
  """
  out = []
  for x in inputs:
    leaves = jax.tree_util.tree_leaves(call(x, dynamic))
    out.append([np.asarray(l) for l in leaves] if host else leaves)
  return out


class ShardedRunner:
  """Runs `call` on `len(devices)` blocks at once, one per device.

  Args:
    call: `call(block_inputs, dynamic) -> pytree` for one block.
    devices: the mesh's devices (possibly of several processes).
  """

  def __init__(self, call: Callable, devices: Sequence[Any]):
    self.n = len(devices)
    self.mesh = Mesh(np.asarray(devices), (_AXIS,))
    self.split = NamedSharding(self.mesh, PartitionSpec(_AXIS))
    self.whole = NamedSharding(self.mesh, PartitionSpec())

    def body(stacked, dynamic):
      local = jax.tree_util.tree_map(lambda a: a[0], stacked)
      out = call(local, dynamic)
      return jax.tree_util.tree_map(lambda a: a[None], out)

    self._fn = jax.jit(jax.shard_map(
        body, mesh=self.mesh, in_specs=(PartitionSpec(_AXIS), PartitionSpec()),
        out_specs=PartitionSpec(_AXIS),
        # Blocks are independent; kernel functions with loops whose carry
        # starts device-invariant (Monte Carlo sums) fail the check.
        check_vma=False))

  def _global(self, x: np.ndarray, sharding) -> jax.Array:
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  def __call__(self, inputs: Sequence[Any], dynamic: Any
               ) -> list[list[np.ndarray]]:
    """Runs up to `n` blocks; returns each block's leaves on the host."""
    count = len(inputs)
    padded = list(inputs) + [inputs[-1]] * (self.n - count)
    stacked = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *padded)
    stacked = jax.tree_util.tree_map(
        lambda x: self._global(x, self.split), stacked)
    dynamic = jax.tree_util.tree_map(
        lambda x: self._global(x, self.whole), dynamic)
    leaves = distributed.allgather(self._fn(stacked, dynamic))
    return [[l[d] for l in leaves] for d in range(count)]
