"""Structured derivatives: the three NTK implementations agree; fallbacks;
large Jacobians contracted in slices give the same kernel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from nt_montecarlo import NtkImplementation, empirical_ntk_fn
from nt_montecarlo import _axes, _program, _structured

JC = NtkImplementation.JACOBIAN_CONTRACTION
NVP = NtkImplementation.NTK_VECTOR_PRODUCTS
SD = NtkImplementation.STRUCTURED_DERIVATIVES

# float64 round-off: each kernel entry sums at most ~1e4 products of O(1)
# numbers in a different order per implementation, so ~1e4 * eps = 2e-12
# relative to the kernel's largest entry, at worst.
RTOL = 2e-12


def _normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


@pytest.fixture(autouse=True)
def fresh_warnings():
  """Each test sees the one-time fallback warnings anew."""
  _structured._WARNED.clear()
  yield
  _structured._WARNED.clear()


# Fully connected: dense layers, a bias broadcast over the batch, a scale.
FC = {"w1": _normal(0, (5, 7)), "b1": _normal(1, (7,)),
      "w2": _normal(2, (7, 3)), "b2": _normal(3, (1, 3))}


def fc(p, x):
  h = jnp.tanh(x @ p["w1"] / jnp.sqrt(5.) + 0.1 * p["b1"][None, :])
  return jnp.dot(h, p["w2"]) / jnp.sqrt(7.) - p["b2"]


# CNN in NCHW/OIHW with strides, dilation and explicit padding, then dense.
CNN = (_normal(4, (4, 2, 3, 3)), _normal(5, (3, 4, 2, 2)),
       _normal(6, (12, 2)))


def cnn(p, x):
  dims = ("NCHW", "OIHW", "NCHW")
  h = lax.conv_general_dilated(x, p[0], (1, 1), "SAME",
                               dimension_numbers=dims)
  h = jax.nn.relu(h / 3.)
  h = lax.conv_general_dilated(h, p[1], (2, 1), ((0, 1), (1, 0)),
                               rhs_dilation=(1, 2), dimension_numbers=dims)
  return jnp.reshape(jnp.tanh(h), (h.shape[0], -1)) @ p[2] / 4.


# Self-attention over a sequence, written in jnp: softmax(q k^T) v.
ATT = {"q": _normal(7, (4, 6)), "k": _normal(8, (4, 6)),
       "v": _normal(9, (4, 6)), "o": _normal(10, (6, 2))}


def attention(p, x):
  q, k, v = (jnp.einsum("nsd,de->nse", x, p[n]) / 2. for n in "qkv")
  a = jax.nn.softmax(jnp.einsum("nse,nte->nst", q, k) / jnp.sqrt(6.), -1)
  return jnp.einsum("nst,nte->nse", a, v) @ p["o"]


# ResNet-style: NHWC convs with biases, a skip connection, a channel scale.
RES = {"c1": _normal(11, (3, 3, 2, 2)), "b1": _normal(12, (2,)),
       "c2": _normal(13, (3, 3, 2, 2)), "g": _normal(14, (1, 1, 1, 2)),
       "out": _normal(15, (2, 3))}


def resnet(p, x):
  dims = ("NHWC", "HWIO", "NHWC")
  h = lax.conv_general_dilated(x, p["c1"], (1, 1), "SAME",
                               dimension_numbers=dims) / 4. + p["b1"].reshape(1, 1, 1, 2)
  h = lax.conv_general_dilated(jax.nn.gelu(h), p["c2"], (1, 1), "SAME",
                               dimension_numbers=dims) / 4.
  h = (x + h) * p["g"]
  return jnp.mean(h, axis=(1, 2)) @ p["out"]


NETS = {
    "fc": (fc, FC, _normal(16, (3, 5)), _normal(17, (2, 5))),
    "cnn": (cnn, CNN, _normal(18, (2, 2, 4, 3)), _normal(19, (1, 2, 4, 3))),
    "attention": (attention, ATT, _normal(20, (2, 3, 4)),
                  _normal(21, (1, 3, 4))),
    "resnet": (resnet, RES, _normal(22, (2, 4, 4, 2)),
               _normal(23, (1, 4, 4, 2))),
}


def assert_close(actual, expected):
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape
  scale = np.max(np.abs(expected))
  assert scale > 0
  np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


# Each network under two of the axis/vmap settings (every setting appears
# twice): the full product would compile 48 kernels, too slow for a test.
@pytest.mark.parametrize("net, trace_axes, diagonal_axes, same, vmap_axes", [
    ("fc", (-1,), (), False, None),
    ("fc", (), (0,), True, 0),
    ("cnn", (), (), False, 0),
    ("cnn", (-1,), (0,), True, None),
    ("attention", (), (), False, None),
    ("attention", (-1,), (0, 1), True, 0),
    ("resnet", (), (0,), True, None),
    ("resnet", (-1,), (), False, 0),
])
def test_three_implementations_agree(net, trace_axes, diagonal_axes, same,
                                     vmap_axes):
  f, params, x1, x2 = NETS[net]
  x2 = None if same else x2
  kernels = [empirical_ntk_fn(f, trace_axes, diagonal_axes, vmap_axes, i)(
      x1, x2, params) for i in (JC, NVP, SD)]
  n2 = len(x1 if x2 is None else x2)
  assert kernels[0].shape[:1 if diagonal_axes else 2] == (
      (len(x1),) if diagonal_axes else (len(x1), n2))
  assert_close(kernels[2], kernels[0])
  assert_close(kernels[1], kernels[0])


@pytest.mark.parametrize("net, expected", [
    ("fc", [("broadcast_in_dim", "mul", "add"), ("sub",),
            ("dot_general",), ("dot_general",)]),
    ("cnn", [("conv_general_dilated",)] * 2 + [("dot_general",)]),
    ("attention", [("dot_general",)] * 4),
    ("resnet", [("reshape", "add"), ("conv_general_dilated",),
                ("conv_general_dilated",), ("mul",), ("dot_general",)]),
])
def test_every_leaf_gets_a_structured_rule(net, expected):
  f, params, x1, _ = NETS[net]
  assert _structured.walks(f, params, x1) == expected


def sin_weights(p, x):
  return x @ jnp.sin(p["bad"]) + x @ p["good"]


def weights_twice(p, x):
  return jnp.tanh(x @ p["bad"]) @ p["bad"].T + x @ p["good"]


@pytest.mark.parametrize("f, match", [
    (sin_weights, "no rule for primitive 'sin'"),
    (weights_twice, "read by 2 operations"),
])
def test_unknown_use_falls_back_to_plain_jacobian_with_one_warning(f, match):
  params = {"bad": _normal(30, (4, 4)), "good": _normal(31, (4, 4))}
  x1, x2 = _normal(32, (3, 4)), _normal(33, (2, 4))
  with pytest.warns(_structured.StructuredDerivativesWarning, match=match):
    walks = _structured.walks(f, params, x1)
  assert walks == [(), ("dot_general",)]  # "good" is still structured
  jc = empirical_ntk_fn(f, (), (), None, JC)(x1, x2, params)
  # Once per process: new shapes retrace without warning again (pytest's
  # filterwarnings=error would turn a second warning into a failure).
  sd = empirical_ntk_fn(f, (), (), None, SD)(x1, x2, params)
  assert_close(sd, jc)


def test_program_inlines_jitted_calls_and_counts_uses():
  @jax.jit
  def inner(w, x):
    return x @ w

  prog = _program.trace(lambda w, x: inner(w, x) * 2., _normal(34, (3, 2)),
                        _normal(35, (4, 3)))
  assert [e.prim.name for e in prog.eqns] == ["dot_general", "mul"]
  assert prog.uses[prog.invars[0]] == 1
  (out,), _ = prog.evaluate([jnp.ones((3, 2)), jnp.ones((4, 3))],
                            {prog.eqns[0].outvars[0]: jnp.ones((4, 2))})
  np.testing.assert_array_equal(out, 8. * np.ones((4, 2)))


# Slices (`_axes.chunks`): the sum over parameter slices is split exactly.
@pytest.mark.parametrize("size, nbytes, count", [
    (64, 45 << 20, 6), (64, 8 << 20, 1), (3, 1 << 30, 3), (1, 1 << 30, 1),
    (10, (8 << 20) + 1, 2)])
def test_chunks_cover_the_axis_once(size, nbytes, count):
  bounds = _axes.chunks(size, nbytes)
  assert len(bounds) == count
  assert bounds[0][0] == 0 and bounds[-1][1] == size
  assert all(hi == lo for (_, hi), (lo, _) in zip(bounds, bounds[1:]))
  assert all(hi > lo for lo, hi in bounds)


def _slices(fn, *args):
  jaxpr = jax.make_jaxpr(fn)(*args)
  return str(jaxpr).count(" slice[")


@pytest.mark.parametrize("net, trace_axes, diagonal_axes, same, vmap_axes", [
    ("fc", (), (), False, None),
    ("cnn", (-1,), (0,), True, 0),
    ("attention", (), (), True, 0),
    ("resnet", (-1,), (), False, None),
])
def test_sliced_contraction_equals_the_whole(monkeypatch, net, trace_axes,
                                             diagonal_axes, same, vmap_axes):
  f, params, x1, x2 = NETS[net]
  x2 = None if same else x2
  make = lambda i: empirical_ntk_fn(f, trace_axes, diagonal_axes, vmap_axes, i)
  whole = make(NVP)(x1, x2, params)  # no Jacobian formed: never sliced
  assert _slices(make(JC), x1, x2, params) == 0
  monkeypatch.setattr(_axes, "CHUNK_BYTES", 16)
  for impl in (JC, SD):
    assert _slices(make(impl), x1, x2, params) > 0
    assert_close(make(impl)(x1, x2, params), whole)
