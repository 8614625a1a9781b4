"""Aggregate: the kernel is the covariance of the aggregated inputs, exactly.

Aggregate has no parameters and is linear, so on raw inputs its kernel must
equal the input covariance of `apply_fn`'s outputs (computed by Identity's
kernel_fn); DENSE and SPARSE patterns of one graph must agree.
"""

import jax
import numpy as np
import pytest

from ntcore import errors, stax

import nt_attention
from nt_attention.errors import PatternError

rng = np.random.default_rng(3)


def to_sparse(adj, n_pad=2):
  """Integer arcs `(n, E, 1, 2)` with `adj[i, j]` repeated arcs `i -> j`,
  plus `n_pad` padding arcs (negative ends)."""
  out = []
  for a in adj:
    arcs = [(i, j) for i, j in zip(*np.nonzero(a)) for _ in range(int(a[i, j]))]
    out.append(arcs)
  e = max(len(a) for a in out) + n_pad
  pat = -np.ones((len(adj), e, 1, 2), int)
  for n, arcs in enumerate(out):
    for k, (i, j) in enumerate(arcs):
      pat[n, k, 0] = (i, j)
    pat[n, len(arcs):, 0, 0] = 1  # padding with a valid tail, negative head
  return pat


def covariance(y1, y2, channel_axis=-1):
  """Channel-mean covariance `(n1, n2, h, h', w, w')` of two batches."""
  y1 = np.moveaxis(np.asarray(y1), channel_axis, -1)
  y2 = y1 if y2 is None else np.moveaxis(np.asarray(y2), channel_axis, -1)
  if y1.ndim == 3:
    return np.einsum("asc,btc->abst", y1, y2) / y1.shape[-1]
  return np.einsum("ahwc,bHWc->abhHwW", y1, y2) / y1.shape[-1]


@pytest.mark.parametrize("implementation", ["DENSE", "SPARSE"])
def test_kernel_is_the_covariance_of_the_aggregated_inputs(implementation):
  x1, x2 = rng.normal(size=(3, 5, 4)), rng.normal(size=(2, 5, 4))
  a1 = rng.integers(0, 3, size=(3, 5, 5)) * (rng.random((3, 5, 5)) < .5)
  a2 = rng.integers(0, 3, size=(2, 5, 5)) * (rng.random((2, 5, 5)) < .5)
  p1, p2 = (a1, a2) if implementation == "DENSE" else (to_sparse(a1),
                                                       to_sparse(a2))
  _, apply_fn, kernel_fn = stax.Aggregate(implementation=implementation)
  apply_fn = jax.jit(apply_fn)
  y1, y2 = apply_fn((), x1, pattern=p1), apply_fn((), x2, pattern=p2)
  np.testing.assert_allclose(y1, np.einsum("nij,nic->njc", a1, x1),
                             rtol=1e-12)
  k = kernel_fn(x1, x2, pattern=(p1, p2))
  np.testing.assert_allclose(k.nngp, covariance(y1, y2), rtol=1e-12)
  own = covariance(y1, None)
  np.testing.assert_allclose(k.cov1, own[np.arange(3), np.arange(3)],
                             rtol=1e-12)


def test_two_dimensional_inputs_aggregate_one_axis():
  # Channel axis first, aggregation over the last axis only (NWW pattern);
  # DENSE and SPARSE of one graph agree with the covariance of the outputs.
  x1, x2 = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(3, 3, 4, 5))
  a1 = (rng.random((2, 5, 5)) < .5).astype(int)
  a2 = (rng.random((3, 5, 5)) < .5).astype(int)
  got = {}
  for impl, p1, p2 in (("DENSE", a1, a2),
                       ("SPARSE", to_sparse(a1), to_sparse(a2))):
    _, apply_fn, kernel_fn = stax.Aggregate(aggregate_axis=3, channel_axis=1,
                                            implementation=impl)
    apply_fn = jax.jit(apply_fn)
    y1, y2 = apply_fn((), x1, pattern=p1), apply_fn((), x2, pattern=p2)
    got[impl] = kernel_fn(x1, x2, "nngp", pattern=(p1, p2))
    np.testing.assert_allclose(got[impl], covariance(y1, y2, 1), rtol=1e-12)
  np.testing.assert_allclose(got["DENSE"], got["SPARSE"], rtol=1e-12)


def test_through_a_network_and_x2_none():
  a = rng.random((3, 5, 5))
  net = stax.serial(stax.Dense(4, b_std=0.1), stax.Relu(), stax.Aggregate(),
                    stax.GlobalAvgPool(), stax.Dense(1))
  x = rng.normal(size=(3, 5, 2))
  alone = net[2](x, None, ("nngp", "ntk"), pattern=a)
  for pattern in ((a, None), (a, a)):
    both = net[2](x, None, ("nngp", "ntk"), pattern=pattern)
    for u, v in zip(alone, both):
      np.testing.assert_allclose(u, v, rtol=1e-12)
  # With x2 given, Relu's dual meets correlation 1 on the diagonal, where its
  # square-root singularity turns round-off eps into ~sqrt(eps).
  pair = net[2](x, x, ("nngp", "ntk"), pattern=(a, a))
  np.testing.assert_allclose(pair.nngp, alone.nngp, rtol=1e-7)
  assert not np.allclose(alone.nngp, net[2](x, None, "nngp"))
  # pattern=None: the identity.
  np.testing.assert_allclose(
      stax.Aggregate()[2](x, None, "nngp"), covariance(x, None), rtol=1e-12)


def test_negative_ends_are_padding():
  x = rng.normal(size=(1, 4, 3))
  pat = np.array([[[0, 1], [2, 1], [-1, 3], [3, -1]]])
  y = stax.Aggregate(implementation="SPARSE").apply_fn((), x, pattern=pat)
  want = np.zeros_like(x)
  want[0, 1] = x[0, 0] + x[0, 2]
  np.testing.assert_allclose(y, want, rtol=1e-12)


@pytest.mark.parametrize("impl, pattern, match", [
    ("DENSE", np.ones((3, 5, 4)), r"\(3, 5, 5\)"),
    ("SPARSE", np.ones((3, 6, 3), int), "n_edges"),
    ("SPARSE", np.ones((3, 6, 2)), "integer"),
])
def test_bad_patterns_say_what_shape_is_expected(impl, pattern, match):
  x = rng.normal(size=(3, 5, 2))
  layer = stax.Aggregate(implementation=impl)
  with pytest.raises(PatternError, match=match):
    layer.apply_fn((), x, pattern=pattern)
  with pytest.raises(PatternError, match=match):
    layer.kernel_fn(x, None, pattern=pattern)


def test_pattern_error_is_the_plugins_own_and_an_ntcore_value_error():
  assert nt_attention.PatternError is PatternError
  assert issubclass(PatternError, errors.NtcoreError)
  assert issubclass(PatternError, ValueError)
  # The core knows no plugin's errors.
  assert not hasattr(errors, "PatternError")
  x = rng.normal(size=(3, 5, 2))
  with pytest.raises(errors.NtcoreError, match="integer"):
    stax.Aggregate(implementation="SPARSE").apply_fn(
        (), x, pattern=np.ones((3, 6, 2)))


def test_one_missing_pattern_and_bad_axes_raise():
  x1, x2 = rng.normal(size=(3, 5, 2)), rng.normal(size=(2, 5, 2))
  a = np.ones((3, 5, 5))
  with pytest.raises(PatternError, match="both batches"):
    stax.Aggregate()[2](x1, x2, pattern=(a, None))
  with pytest.raises(PatternError, match="one graph per batch"):
    stax.Aggregate()[2](x1, x2, pattern=a)
  with pytest.raises(PatternError, match="spatial axes only"):
    stax.Aggregate(aggregate_axis=-1)[2](x1, None, pattern=a)
  with pytest.raises(ValueError, match="'DENSE' or 'SPARSE'"):
    stax.Aggregate(implementation="CSR")


def test_apply_fn_jits_with_the_pattern_as_an_argument():
  x = rng.normal(size=(2, 5, 3))
  a = rng.random((2, 5, 5))
  f = jax.jit(lambda x, a: stax.Aggregate().apply_fn((), x, pattern=a))
  np.testing.assert_allclose(f(x, a), np.einsum("nij,nic->njc", a, x),
                             rtol=1e-12)
