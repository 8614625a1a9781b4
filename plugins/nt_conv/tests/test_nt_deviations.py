"""Where ntcore and NT differ, and ntcore's own slips: each test pins one.

Every test states an invariance the kernel must have (two networks that
compute the same function, a closed form, or the finite network's own
Monte Carlo estimate) and that the layer got wrong once, in NT or here.
The README section "Where ntcore differs from NT" lists them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntcore as nt
import ntcore.testing
from ntcore import stax

from _exact import natural

rng = np.random.default_rng(5)
X1 = rng.normal(size=(3, 5, 3, 2))  # NHWC, non-square on purpose
X2 = rng.normal(size=(2, 5, 3, 2))

# (mc - exact) / stderr, the stderr estimated from S i.i.d. samples, is
# Student-t with S - 1 degrees of freedom: for S = 32 and z = 6 a correct
# kernel fails an entry with probability ~1e-6.
Z = 6.


def sampled_nngp(net, x1, x2, n_samples, key=jax.random.PRNGKey(3)):
  """Mean and standard error of the finite network's NNGP over draws.

  Each draw's NNGP is the mean over output channels of `f(x1) f(x2)^T`, an
  unbiased estimate for a network whose outputs are Gaussian given its
  inputs; draws are i.i.d., so the standard error is their standard
  deviation over `sqrt(n_samples)`.
  """
  init_fn, apply_fn, _ = net

  def one(key):
    _, params = init_fn(key, x1.shape)
    f1, f2 = apply_fn(params, x1), apply_fn(params, x2)
    return jnp.einsum("n...c,m...c->nm...", f1, f2) / f1.shape[-1]

  # lax.map, not vmap: a batch of filters makes XLA's CPU convolution
  # grouped, several times slower than one filter bank at a time.
  draws = np.asarray(jax.jit(lambda keys: jax.lax.map(one, keys))(
      jax.random.split(key, n_samples)))
  return draws.mean(0), draws.std(0, ddof=1) / np.sqrt(n_samples)


def assert_within_error_bar(mc, stderr, exact, what):
  exact = np.asarray(exact)
  allowed = Z * stderr + 1e-12 * np.abs(exact).max()
  err = np.abs(mc - exact)
  worst = np.unravel_index(np.argmax(err - allowed), err.shape)
  assert np.all(err <= allowed), (
      f"{what}: finite network {mc[worst]:.6g} vs kernel {exact[worst]:.6g} "
      f"at {worst} (allowed {allowed[worst]:.3g})")


CONVS = {
    "Conv": lambda **kw: stax.Conv(32, (2, 3), padding="SAME", **kw),
    "ConvTranspose": lambda **kw: stax.ConvTranspose(32, (2, 3), (2, 1),
                                                     padding="SAME", **kw),
    "ConvLocal": lambda **kw: stax.ConvLocal(32, (2, 3), padding="SAME", **kw),
}


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("b_std", [0., None, 0.3], ids=["zero", "none", "0.3"])
@pytest.mark.parametrize("name", sorted(CONVS))
def test_finite_network_has_the_bias_its_kernel_says(name, b_std,
                                                     parameterization):
  """`b_std=0.` is a zero bias in the finite network, as in NT and as the
  kernel (`+ b_std^2 = 0`) says; `init_fn` once drew unit-variance biases
  for it in the standard parameterization (`b_std or 1.`), so the network
  disagreed with its own kernel by 1 on every entry.

  NNGP: the layer acts on the inputs, so its outputs are exactly Gaussian
  and each draw's channel mean is unbiased. NTK: the layer is linear in its
  parameters, so one draw's empirical NTK is the expected one exactly.
  """
  net = stax.serial(CONVS[name](W_std=1.2, b_std=b_std,
                                parameterization=parameterization),
                    stax.Flatten())
  nngp, ntk = net[2](X1, X2, ("nngp", "ntk"))
  mc, stderr = sampled_nngp(net, X1, X2, n_samples=32)
  assert_within_error_bar(mc, stderr, nngp, f"{name} nngp")
  _, params = net[0](jax.random.PRNGKey(0), X1.shape)
  empirical = nt.empirical_ntk_fn(net[1])(X1, X2, params)
  np.testing.assert_allclose(empirical, ntk, rtol=1e-10, atol=1e-12)


def conv1x1(**kw):
  kw = dict(W_std=1.4, b_std=0.3, **kw)
  return stax.Conv(4, (1, 1), **kw)


def tail():
  """Layers after the one under test: a nonlinearity, a non-square strided
  convolution and a pool that reads every spatial pair."""
  return [stax.Erf(), stax.Conv(3, (2, 3), (2, 1), padding="SAME", W_std=1.1,
                                b_std=0.2), stax.GlobalAvgPool()]


@pytest.mark.parametrize("method", ["nearest", "linear"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_image_resize_after_a_conv_resizes_the_right_axes(method,
                                                          parameterization):
  """NT's `ImageResize` ignores `is_reversed`, so after an odd number of
  full-spatial convolutions it resizes height's pair to width's size and
  width's to height's.

  Identity: a 1x1 convolution acts on channels only and resizing on spatial
  axes only, with weights that sum to 1 per output position ('nearest'
  selects one input, 'linear' interpolates), so resizing commutes with it,
  bias included: `resize(conv1x1(x)) = conv1x1(resize(x))` for every draw
  of the finite network. Hence the kernel of `conv1x1 -> resize -> tail` on
  `x` equals that of `conv1x1 -> tail` on `resize(x)` (the input kernel of
  the resized images), NNGP and NTK, to round-off, with the resize applied
  to a kernel that the 1x1 convolution left stored reversed.
  """
  x1, x2 = X1, X2  # 5 x 3 images, resized to 4 x 6
  shape = (-1, 4, 6, -1)
  first = conv1x1(parameterization=parameterization)
  resized = stax.serial(first, stax.ImageResize(shape, method), *tail())
  reference = stax.serial(first, *tail())

  def resize(x):
    return jax.image.resize(x, (x.shape[0], 4, 6, x.shape[3]), method)

  got = resized[2](x1, x2, ("nngp", "ntk"))
  want = reference[2](resize(x1), resize(x2), ("nngp", "ntk"))
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-13)
  # The finite network's identity the kernel inherits.
  _, params = resized[0](jax.random.PRNGKey(1), x1.shape)
  without_resize = params[:1] + params[2:]  # ImageResize has no parameters
  np.testing.assert_allclose(resized[1](params, x1),
                             reference[1](without_resize, resize(x1)),
                             rtol=1e-11, atol=1e-13)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_image_resize_after_a_conv_agrees_with_monte_carlo(method):
  """The resize sees the first convolution's kernel, stored reversed, of
  non-square 5 x 3 images, resized to 4 x 6. Everything after the Relu is
  linear, so the Monte Carlo mean is unbiased (`bias=0`): only sampling
  error, z = 6 standard errors from 16 groups (`check_monte_carlo`)."""
  net = stax.serial(stax.Conv(64, (2, 3), padding="SAME", W_std=1.3,
                              b_std=0.2),
                    stax.ImageResize((-1, 4, 6, -1), method), stax.Relu(),
                    stax.GlobalAvgPool(), stax.Dense(1, W_std=1.1, b_std=0.1))
  ntcore.testing.check_monte_carlo(net, X1[:2], X2, key=jax.random.PRNGKey(4),
                                   n_samples=128, bias=0.)


def conv_local(**kw):
  # Non-square filter and strides on non-square images.
  return stax.ConvLocal(4, (3, 2), (2, 1), W_std=1.3, **kw)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv_local_after_odd_and_even_numbers_of_convs_agree(padding):
  """NT's full-spatial `ConvLocal` ignores `is_reversed`: after an odd
  number of full-spatial convolutions its filter, strides and padding act
  on each other's axes.

  Identity: `B = Conv(1x1, W_std=1, b_std=None)` leaves the NNGP unchanged
  and adds it to the NTK (`ntk' = 1 * (ntk + nngp)`), and flips NT's
  storage order. Every later layer here is affine without bias (NTK
  parameterization) or parameter-free and linear, so it maps that NTK
  difference `D = nngp` to `W^2 A(D) = nngp'`: the final NNGPs are equal
  and the final NTKs differ by exactly the final NNGP. The trailing `Conv`
  needs `ConvLocal`'s full (spatially diagonal) covariance, so its input is
  full too.
  """
  a = stax.Conv(4, (2, 2), padding="SAME", W_std=1.2, b_std=0.4)
  b = stax.Conv(4, (1, 1), W_std=1., b_std=None)
  rest = [conv_local(padding=padding, b_std=None),
          stax.Conv(2, (2, 1), W_std=0.9), stax.GlobalAvgPool()]
  x1 = rng.normal(size=(3, 6, 4, 2))
  x2 = rng.normal(size=(2, 6, 4, 2))
  odd = stax.serial(a, *rest)[2](x1, x2, ("nngp", "ntk"))
  even = stax.serial(a, b, *rest)[2](x1, x2, ("nngp", "ntk"))
  np.testing.assert_allclose(even.nngp, odd.nngp, rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(even.ntk, odd.ntk + odd.nngp, rtol=1e-12,
                             atol=1e-14)


@pytest.mark.slow
def test_conv_local_after_a_conv_agrees_with_monte_carlo():
  """`ConvLocal` (non-square filter and strides, non-square images) reads
  a full covariance left stored reversed by one convolution. Its input is
  the Relu of exactly Gaussian pre-activations and all later layers are
  linear, so the Monte Carlo mean is unbiased (`bias=0`, z = 6)."""
  x1 = rng.normal(size=(2, 6, 4, 2))
  x2 = rng.normal(size=(2, 6, 4, 2))
  net = stax.serial(stax.Conv(64, (2, 2), padding="SAME", W_std=1.2,
                              b_std=0.2), stax.Relu(),
                    stax.ConvLocal(64, (3, 2), (2, 1), padding="SAME",
                                   W_std=1.3, b_std=0.1),
                    stax.Conv(64, (2, 1), W_std=0.9, b_std=0.1),
                    stax.GlobalAvgPool(), stax.Dense(1, b_std=0.1))
  ntcore.testing.check_monte_carlo(net, x1, x2, key=jax.random.PRNGKey(6),
                                   n_samples=128, bias=0.)


def _erf_dual(c, q1, q2):
  return (2 / np.pi) * jnp.arcsin(2 * c / jnp.sqrt((1 + 2 * q1) * (1 + 2 * q2)))


def kernel_only_erf():
  """Erf given by its dual only: no finite network (`apply_fn` raises)."""
  return stax.Elementwise(nngp_fn=_erf_dual)


def erf():
  return stax.Elementwise(jax.scipy.special.erf, _erf_dual)


def std_conv(width, filt):
  # The standard parameterization's NTK reads the fan-in from the shape.
  return stax.Conv(width, filt, padding="SAME", W_std=1.2, b_std=0.1,
                   parameterization="standard")


def std_dense(width):
  return stax.Dense(width, W_std=1.1, b_std=0.2, parameterization="standard")


# name -> (flat layers, the same layers nested), `act` the nonlinearity.
ARCHITECTURES = {
    "flatten": lambda act: (
        [std_conv(7, (2, 2)), act(), stax.Flatten(), std_dense(3)],
        [stax.serial(std_conv(7, (2, 2)), act()),
         stax.serial(stax.Flatten(), std_dense(3))]),
    "pooling": lambda act: (
        [std_conv(5, (2, 1)), act(), stax.AvgPool((2, 2), (1, 1)),
         std_conv(3, (1, 2)), stax.GlobalAvgPool(), std_dense(2)],
        [stax.serial(stax.serial(std_conv(5, (2, 1)), act()),
                     stax.AvgPool((2, 2), (1, 1))),
         std_conv(3, (1, 2)), stax.serial(stax.GlobalAvgPool(),
                                          std_dense(2))]),
    "concat": lambda act: (
        [std_conv(6, (1, 1)), stax.FanOut(2),
         stax.parallel(stax.serial(std_conv(9, (2, 2)), act()),
                       std_conv(2, (1, 2))),
         stax.FanInConcat(), std_conv(4, (2, 2)), stax.Flatten(),
         std_dense(2)],
        [stax.serial(std_conv(6, (1, 1)), stax.FanOut(2)),
         stax.parallel(stax.serial(std_conv(9, (2, 2)), act()),
                       stax.serial(std_conv(2, (1, 2)))),
         stax.serial(stax.FanInConcat(), std_conv(4, (2, 2))),
         stax.Flatten(), std_dense(2)]),
}


@pytest.mark.slow  # 20-50 s each on 2 busy cores, mostly compilation
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_flat_and_nested_serial_agree_without_a_finite_network(name):
  """NT infers each layer's output shape by running its finite network
  and, where a layer has none (`apply_fn` raises NotImplementedError),
  keeps the shape it had before: a `serial` holding such a layer then
  reports its *input's* shape, so channel counts after it are stale and the
  standard parameterization's NTK (`fan_in / s * nngp`) and `FanInConcat`'s
  channel weights differ between a flat and a nested `serial` of the same
  layers. Shapes here come from `init_fn`, which every layer has: the
  kernel equals, to round-off, the flat and the nested one with a kernel-
  only Erf, and those of the same network whose Erf has a finite network.
  """
  x1 = rng.normal(size=(3, 4, 3, 2))
  x2 = rng.normal(size=(2, 4, 3, 2))
  flat, nested = ARCHITECTURES[name](kernel_only_erf)
  reference = stax.serial(*ARCHITECTURES[name](erf)[0])
  want = reference[2](x1, x2, ("nngp", "ntk"))
  for layers in (flat, nested):
    got = stax.serial(*layers)[2](x1, x2, ("nngp", "ntk"))
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
