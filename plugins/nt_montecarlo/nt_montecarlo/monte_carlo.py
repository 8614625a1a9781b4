"""Monte Carlo NNGP/NTK: empirical kernels averaged over random initializations.

`K_n = (1/n) sum_s K(theta_s)` with `theta_s ~ init_fn` i.i.d.; its error
shrinks like `1/sqrt(n)` (central limit theorem). At width `w` the mean
`E K(theta)` itself differs from the infinite-width kernel by `O(1/w)`.

Samples are drawn the way Neural Tangents draws them, so the same `key`
gives the same parameters: sample `s` uses the second half of
`random.split` of the running key (whose first half becomes the next running
key), split again into an init key and a dropout key (`rng=` of `apply_fn`).

They are computed one at a time by default inside one jitted `fori_loop`
that keeps only a running sum, so memory is one sample's kernel (and its
Jacobians) plus the sum, whatever `n_samples`; a generator of several
estimates compiles once. `_samples_per_chunk > 1` evaluates that many
samples together with `vmap` (parameters drawn one after another with
`lax.map`), which multiplies the loop's temporary memory by the chunk.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Callable, Iterable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax, random
from ntcore import parallel

from nt_montecarlo import _get, _jit
from nt_montecarlo._axes import Axes
from nt_montecarlo.empirical import empirical_nngp_fn
from nt_montecarlo.errors import EstimatorArgumentError
from nt_montecarlo.implementation import (DEFAULT_NTK_IMPLEMENTATION,
                                          NtkImplementation)
from nt_montecarlo.ntk import empirical_ntk_fn

PyTree = Any

DEFAULT_SAMPLES_PER_CHUNK = 1
"""Samples evaluated at once by `vmap`: memory grows linearly with it.

One, because `vmap`ping samples bought no speed on CPU (JAX 0.10.2, 2
cores, bench.py `i_mc_*`) and multiplied memory: for the NTK of
Dense(128)-Relu x3, N=256, 16 samples, chunks of 8 held 8 samples'
Jacobians at once (XLA temp memory 1221 MB, peak RSS 1550 MB, 19.5 s per
call) where one at a time holds one (153 MB, 490 MB, 17.4 s, same load);
the NNGP of the width-512 depth-10 FC net, 64 samples, went from 440 MB
and 7.8 s to 350 MB and 5.0 s (batched matmuls over samples are slower
than plain ones). `test_sample_loop_memory_does_not_grow_with_n_samples`
holds the bound.
"""


def monte_carlo_kernel_fn(
    init_fn: Callable[..., Any],
    apply_fn: Callable[..., PyTree],
    key: jax.Array,
    n_samples: Union[int, Iterable[int]],
    batch_size: int = 0,
    device_count: int = -1,
    store_on_device: bool = True,
    trace_axes: Axes = (-1,),
    diagonal_axes: Axes = (),
    vmap_axes: Any = None,
    implementation: Union[int, NtkImplementation] = DEFAULT_NTK_IMPLEMENTATION,
    _j_rules: bool = True,
    _s_rules: bool = True,
    _fwd: Optional[bool] = None,
    *,
    _samples_per_chunk: Optional[int] = None,
) -> Callable[..., Any]:
  """Returns `kernel_fn(x1, x2=None, get=None, **apply_fn_kwargs)`: MC kernels.

  Averages the empirical NNGP/NTK (`empirical_kernel_fn`) of `apply_fn` over
  `n_samples` parameter draws from `init_fn`. The returned function is
  jitted internally; don't wrap it in `jax.jit`. Every block of a batched
  computation uses the same parameter draws, so batching changes the result
  only by round-off.

  Args:
    init_fn: `init_fn(key, input_shape) -> (output_shape, params)`.
    apply_fn: `apply_fn(params, x, **kwargs)`. It also receives `rng=` (a
      fresh key per sample, e.g. for Dropout) when its signature takes `rng`
      or `**kwargs`.
    key: the PRNG key all samples are drawn from.
    n_samples: an int `n` (return the estimate from `n` samples), or an
      iterable of positive ints (return a generator yielding the estimate
      from `n` samples for each `n`, in increasing order, reusing the
      samples of the smaller `n`).
    batch_size: compute the kernel in `batch_size x batch_size` blocks of
      examples with `ntcore.batch` (any sizes; for `x2=None` only the blocks
      on and above the diagonal). 0: the whole `x1 x x2` kernel at once.
    device_count: devices the blocks run on (`ntcore.batch`): -1 all, 0 the
      default one, `k` the first `k`. Used when `batch_size > 0` or
      `device_count > 1`; with the defaults one device computes everything.
    store_on_device: with batching, False keeps the result in host memory
      (`ntcore.batch`).
    trace_axes: output axes summed over (divided by their size).
    diagonal_axes: output axes of which only the diagonal is kept.
    vmap_axes: NTK only; see `empirical_ntk_fn`.
    implementation: NTK only; see `empirical_ntk_fn`
      (`STRUCTURED_DERIVATIVES` and `AUTO` currently compute a Jacobian
      contraction).
    _j_rules, _s_rules, _fwd: accepted for NT compatibility, unused.
    _samples_per_chunk: ntcore extension: samples evaluated at once with
      `vmap` (default 1: one sample's kernel in memory at a time); the
      loop's temporary memory grows linearly with it. Does not change the
      result beyond round-off.

  Returns:
    `kernel_fn(x1, x2=None, get=None, **apply_fn_kwargs)`. `get` as in
    `empirical_kernel_fn` (a tuple or None gives a `MonteCarloKernel`
    namedtuple); shapes as in `empirical_ntk_fn`, e.g. `(N1, N2)` for the
    default `trace_axes`. A generator of those when `n_samples` is not an
    int. `x1`, `x2` may be lists or tuples of arrays with one batch size
    (a network that starts with `stax.parallel`): `init_fn` then receives
    the same structure of shapes, and blocks cut every array alike. An
    `apply_fn` with a list of outputs gives a list of kernels.

  Raises:
    EstimatorArgumentError: bad `n_samples`, `implementation` or
      `_samples_per_chunk`; `kernel_fn` raises it for a bad `get`, for
      `rng=` (drawn per sample here), and for an `apply_fn` keyword that is
      neither an array nor hashable.
  """
  counts, as_generator = _canonical_n_samples(n_samples)
  chunk = (min(counts[-1], DEFAULT_SAMPLES_PER_CHUNK)
           if _samples_per_chunk is None else _samples_per_chunk)
  if (not isinstance(chunk, numbers.Integral) or isinstance(chunk, bool)
      or chunk < 1):
    raise EstimatorArgumentError(
        f"_samples_per_chunk={_samples_per_chunk!r}; pass a positive int "
        f"(or None for the default).")
  n_chunks = -(-counts[-1] // chunk)
  kernel_fns = {
      "nngp": empirical_nngp_fn(apply_fn, trace_axes, diagonal_axes),
      "ntk": empirical_ntk_fn(apply_fn, trace_axes, diagonal_axes, vmap_axes,
                              implementation, _j_rules, _s_rules, _fwd),
  }
  pass_rng = _accepts_rng(apply_fn)

  def draw(sample_key, x1):
    with jax.threefry_partitionable(False):  # NT 0.6.5's bits
      init_key, dropout_key = random.split(sample_key)
    _, params = init_fn(init_key, jax.tree_util.tree_map(jnp.shape, x1))
    return params, dropout_key

  def kernels(params, dropout_key, x1, x2, names, kwargs):
    if pass_rng:
      kwargs = dict(kwargs, rng=dropout_key)
    return {g: kernel_fns[g](x1, x2, params, **kwargs) for g in names}

  @functools.partial(jax.jit, static_argnames=("names", "static_kwargs"))
  def running_sum(previous, start, stop, x1, x2, dynamic_kwargs, names,
                  static_kwargs):
    """`previous` plus the kernels of samples `start <= s < stop`, and the
    mean of samples `0 <= s < stop`."""
    kwargs = dict(static_kwargs, **dynamic_kwargs)
    keys = _sample_keys(key, n_chunks * chunk)
    keys = keys.reshape((n_chunks, chunk) + keys.shape[1:])

    def chunk_kernels(chunk_keys):
      if chunk == 1:
        # No `vmap` over a batch of one sample: XLA is left plain (not
        # batched) products to compile.
        one = kernels(*draw(chunk_keys[0], x1), x1, x2, names, kwargs)
        return jax.tree_util.tree_map(lambda k: k[None], one)
      # Parameters are drawn one by one (`lax.map`): a `vmap`ped PRNG
      # compiles about twice as slowly, and drawing is cheap next to kernels.
      params, dropout_keys = lax.map(lambda k: draw(k, x1), chunk_keys)
      return jax.vmap(lambda p, k: kernels(p, k, x1, x2, names, kwargs))(
          params, dropout_keys)

    def body(i, total):
      index = i * chunk + jnp.arange(chunk)
      keep = (index >= start) & (index < stop)

      def add(t, k):
        keep_k = keep.reshape((chunk,) + (1,) * (k.ndim - 1))
        return t + jnp.sum(jnp.where(keep_k, k, jnp.zeros((), k.dtype)), 0)

      return jax.tree_util.tree_map(add, total, chunk_kernels(keys[i]))

    total = lax.fori_loop(start // chunk, (stop + chunk - 1) // chunk, body,
                          previous)
    return total, jax.tree_util.tree_map(lambda t: t / stop, total)

  def estimates(x1, x2, names, single, dynamic, static):
    # Zeros made on the host, so that the first call compiles the same
    # function as the later ones.
    kwargs = dict(static, **dynamic)
    shapes = jax.eval_shape(
        lambda k: kernels(*draw(k, x1), x1, x2, names, kwargs), key)
    total = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype),
                                   shapes)
    done = 0
    for n in counts:
      total, mean = running_sum(total, done, n, x1, x2, dynamic, names,
                                static)
      done = n
      yield _get.package(mean, names, single, "MonteCarloKernel")

  def kernel_fn(x1: PyTree, x2: Optional[PyTree] = None, get: _get.Get = None,
                **apply_fn_kwargs) -> Any:
    """Monte Carlo estimate of the kernels; see `monte_carlo_kernel_fn`."""
    names, single = _get.canonical_get(get)
    if pass_rng and "rng" in apply_fn_kwargs:
      raise EstimatorArgumentError(
          "monte_carlo_kernel_fn draws a fresh rng= for apply_fn from its "
          "key for every sample; don't pass rng= to kernel_fn (change `key` "
          "to change the samples).")
    dynamic, static = _jit.partition_kwargs(apply_fn_kwargs)
    out = estimates(x1, x2, names, single, dynamic, static)
    return out if as_generator else next(out)

  if batch_size or device_count > 1:
    return parallel.batch(kernel_fn, batch_size, device_count,
                          store_on_device)
  return kernel_fn


def _canonical_n_samples(n_samples) -> tuple[tuple[int, ...], bool]:
  """`(sorted distinct counts, whether to return a generator)`."""
  def is_count(n):
    return (isinstance(n, numbers.Integral) and not isinstance(n, bool)
            and n > 0)

  if isinstance(n_samples, numbers.Integral) and not isinstance(
      n_samples, bool):
    counts, as_generator = [n_samples], False
  else:
    try:
      counts, as_generator = list(n_samples), True
    except TypeError:
      counts, as_generator = None, True
  if not counts or not all(is_count(n) for n in counts):
    raise EstimatorArgumentError(
        f"n_samples={n_samples!r}; pass a positive int, or an iterable of "
        f"positive ints (e.g. [1, 10, 100]) to get a generator of estimates.")
  return tuple(sorted({int(n) for n in counts})), as_generator


def _sample_keys(key, n: int):
  """NT's key stream: `key, sample_key = split(key)`, `n` times.

  Split as JAX 0.4 split (`threefry_partitionable` off), whose bits NT 0.6.5
  drew, as ntcore's `init_fn`s draw their parameters: the same `key` gives
  NT's samples.
  """
  def step(k, _):
    k, sample_key = random.split(k)
    return k, sample_key
  with jax.threefry_partitionable(False):
    return lax.scan(step, key, length=n)[1]


def _accepts_rng(fn: Callable) -> bool:
  """Whether `fn` can take `rng=` (NT passes it to every `apply_fn`)."""
  try:
    parameters = inspect.signature(fn).parameters.values()
  except (TypeError, ValueError):
    return True
  return any(p.kind is p.VAR_KEYWORD or p.name == "rng" for p in parameters)
