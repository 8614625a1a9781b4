"""Networks that differ only in hyper-parameters share one compiled program.

By default a small `kernel_fn` call outside any transformation runs the
program of its structure (`NTCORE_SHARE_PROGRAMS=0` turns that off), hyper-parameters passed
as arguments (`ntcore/_network/dispatch.py`). Compilations are counted with
`jax.monitoring` (XLA's backend-compile events), not by timing.
"""

import importlib.util
import pathlib

import jax
import numpy as np
import pytest

from ntcore import combinators, stax
from ntcore._network import dispatch, shared_programs

_spec = importlib.util.spec_from_file_location(
    "fakes", pathlib.Path(__file__).with_name("fakes.py"))
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)

X = np.random.default_rng(0).normal(size=(5, 4))
# The two programs differ by float64 round-off (eps ~ 2e-16), except where a
# ReLU-family rule evaluates arccos(c) at a correlation c within round-off
# of 1 (the same-example entries): arccos' slope there turns a change eps
# of c into one of about sqrt(2 eps) ~ 2e-8 per layer. RTOL allows that
# for a few layers with a factor 10 to spare.
EPS = np.finfo(np.float64).eps
RTOL = 10 * 3 * np.sqrt(2 * EPS)


def fc(w_std, b_std, depth, activation="Relu"):
  layers = []
  for _ in range(depth):
    layers += [stax.Dense(8, W_std=w_std, b_std=b_std),
               getattr(stax, activation)()]
  return stax.serial(*layers, stax.Dense(1, W_std=w_std, b_std=b_std))[2]


def own_program(kernel_fn, x, get):
  """The network's own compiled program (constants baked in), the default."""
  return jax.jit(kernel_fn, static_argnames="get")(x, None, get)


def test_sweep_compiles_one_program_per_structure(share, compiles):
  fc(1.0, 0.1, 3)(X, None, ("nngp", "ntk"))  # warm up input casting
  compiles.clear()
  points = [(w, b) for w in (0.9, 1.3) for b in (0.05, 0.2)]
  results = {}
  for depth, activation in ((1, "Relu"), (2, "Erf")):
    for w_std, b_std in points:
      kernel_fn = fc(w_std, b_std, depth, activation)
      results[depth, w_std, b_std] = kernel_fn, kernel_fn(X, None,
                                                          ("nngp", "ntk"))
  assert len(compiles) == 2, compiles
  assert len(shared_programs._programs) == 3  # pylint: disable=protected-access
  for kernel_fn, got in results.values():
    want = own_program(kernel_fn, X, ("nngp", "ntk"))
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=RTOL)
  nngps = [np.asarray(got[0]) for _, got in results.values()]
  assert not np.allclose(nngps[0], nngps[1])  # each its own hyper-parameters


def test_sharing_is_the_default(monkeypatch, compiles):
  monkeypatch.delenv(dispatch.SHARE_PROGRAMS_ENV, raising=False)
  shared_programs._programs.clear()  # pylint: disable=protected-access
  fc(1.0, 0.1, 3)(X, None, "nngp")
  compiles.clear()
  for w_std in (0.9, 1.1, 1.3):
    fc(w_std, 0.1, 1)(X, None, "nngp")
  assert len(compiles) == 1


def test_opting_out_compiles_each_network(monkeypatch, compiles):
  monkeypatch.setenv(dispatch.SHARE_PROGRAMS_ENV, "0")
  fc(1.0, 0.1, 3)(X, None, "nngp")
  compiles.clear()
  for w_std in (0.9, 1.1, 1.3):
    fc(w_std, 0.1, 1)(X, None, "nngp")
  assert len(compiles) == 3


def test_a_network_traces_once_per_signature(share):
  seen = []
  _, _, kernel_fn = fakes.linear(record=seen)
  kernel_fn(X, X[:3], "nngp")
  kernel_fn(X + 1., X[:3] - 1., "nngp")
  assert len(seen) == 1
  kernel_fn(X, None, "nngp")
  assert len(seen) == 2


def test_fake_layers_share_and_keep_their_values(share):
  # nngp' = w_var nngp + b_var, exactly, for each network of the structure.
  for w_var, b_var in ((2., 0.5), (3., 0.25)):
    kernel_fn = combinators.serial(fakes.linear(w_var=w_var, b_var=b_var),
                                   fakes.linear(w_var=w_var, b_var=b_var))[2]
    nngp = np.asarray(kernel_fn(X, None, "nngp"))
    base = X @ X.T / X.shape[1]
    np.testing.assert_allclose(nngp, w_var * (w_var * base + b_var) + b_var,
                               rtol=1e-14)


def test_bias_or_no_bias_is_structure(share):
  with_bias, without = fc(1.2, 0.3, 1), fc(1.2, None, 1)
  for kernel_fn in (with_bias, without):
    np.testing.assert_allclose(kernel_fn(X, None, "nngp"),
                               own_program(kernel_fn, X, "nngp"), rtol=RTOL)
  assert not np.allclose(with_bias(X, None, "nngp"), without(X, None, "nngp"))


def test_convolutions(share):
  images = np.random.default_rng(1).normal(size=(3, 4, 4, 2))
  for w_std in (1.0, 1.5):
    kernel_fn = stax.serial(
        stax.Conv(4, (3, 3), padding="SAME", W_std=w_std, b_std=0.1),
        stax.Relu(), stax.AvgPool((2, 2)),
        stax.Conv(4, (3, 3), padding="SAME", W_std=w_std, b_std=0.1),
        stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1))[2]
    got = kernel_fn(images, None, ("nngp", "ntk"))
    want = own_program(kernel_fn, images, ("nngp", "ntk"))
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=RTOL)


def test_repeat_keeps_its_hyperparameters(share):
  # The scan body of `repeat` is part of the structure (its literals stay
  # constants there), so each value still gets its own, correct program.
  for w_std in (1.0, 1.5):
    block = stax.serial(stax.Dense(8, W_std=w_std, b_std=0.1), stax.Relu())
    kernel_fn = stax.serial(block, stax.repeat(block, 2), stax.Dense(1))[2]
    got = kernel_fn(X, None, ("nngp", "ntk"))
    want = own_program(kernel_fn, X, ("nngp", "ntk"))
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=RTOL)


def test_under_the_users_jit_and_grad(share):
  kernel_fn = fc(1.3, 0.1, 2)
  jitted = jax.jit(kernel_fn, static_argnames="get")
  np.testing.assert_allclose(jitted(X, None, "nngp"),
                             kernel_fn(X, None, "nngp"), rtol=RTOL)
  grad = jax.grad(lambda x: kernel_fn(x, None, "nngp").sum())(X)
  assert grad.shape == X.shape and np.all(np.isfinite(grad))


def test_large_calls_run_the_networks_own_program(share, monkeypatch):
  monkeypatch.setattr(dispatch, "SMALL_CALL_ENTRIES", X.shape[0] ** 2)
  kernel_fn = fc(1.3, 0.1, 1)
  kernel_fn(X, None, "nngp")  # 25 entries: not below the bound
  assert not shared_programs._programs  # pylint: disable=protected-access
  kernel_fn(X[:4], None, "nngp")  # 16 entries: shared
  assert len(shared_programs._programs) == 1  # pylint: disable=protected-access


def test_input_entries_count_spatial_pairs():
  images = np.zeros((3, 4, 5, 2))
  assert dispatch.input_entries(images, images[:2], 0, -1, False) == 3 * 2 * 400
  assert dispatch.input_entries(images, None, 0, -1, True) == 9 * 20
  assert dispatch.input_entries([X, images], None, 0, -1, False) == 25 + 9 * 400


def test_a_called_network_pickles_as_before_the_call(share):
  """The caches of compiled programs and traces stay out of a pickle: it is
  what Dask workers receive and what identifies the model by its hash."""
  cloudpickle = pytest.importorskip("cloudpickle")
  kernel_fn = fc(1.2, 0.1, 2)
  before = cloudpickle.dumps(kernel_fn)
  want = kernel_fn(X, None, "ntk")  # fills both caches
  assert cloudpickle.dumps(kernel_fn) == before
  np.testing.assert_array_equal(cloudpickle.loads(before)(X, None, "ntk"),
                                want)
