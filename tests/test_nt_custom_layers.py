"""Layers written Neural Tangents' way (`@stax.layer`, `@stax.requires`,
`@stax.supports_masking`) are ordinary ntcore layers.

The custom layer here is `phi(u) = u^2`, whose kernel has a closed form:
for jointly Gaussian `(u, v)` with variances `q, q'` and covariance `c`,
`E[u^2 v^2] = q q' + 2 c^2` and `E[phi'(u) phi'(v)] = 4 c`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntcore as nt
from ntcore import stax
from ntcore.diagonal import to_diag
from ntcore.layer import Diag
from ntcore.testing import check_monte_carlo

RNG = np.random.RandomState(0)
X1 = RNG.normal(size=(4, 3))
X2 = RNG.normal(size=(3, 3))


def square_rule(k, **kwargs):
  del kwargs
  cov2 = k.cov1 if k.cov2 is None else k.cov2
  nngp = k.cov1[:, None] * cov2[None, :] + 2 * k.nngp ** 2
  ntk = None if k.ntk is None else 4 * k.nngp * k.ntk
  return k.replace(nngp=nngp, ntk=ntk, cov1=3 * k.cov1 ** 2,
                   cov2=None if k.cov2 is None else 3 * k.cov2 ** 2,
                   is_gaussian=False)


@stax.layer
@stax.supports_masking(remask_kernel=False)
def Square():  # pylint: disable=invalid-name
  def init_fn(key, input_shape):
    del key
    return input_shape, ()

  def apply_fn(params, x, **kwargs):
    del params, kwargs
    return x ** 2

  return init_fn, apply_fn, stax.requires(diagonal_spatial=stax.Diagonal())(
      square_rule)


def closed_form(x1, x2, w_var=1.):
  """NNGP of Dense(W_std^2 = w_var, no bias) -> Square -> Dense(1, W_std=1)."""
  x2 = x1 if x2 is None else x2
  c = w_var * x1 @ x2.T / x1.shape[1]
  q1 = w_var * np.sum(x1 ** 2, 1) / x1.shape[1]
  q2 = w_var * np.sum(x2 ** 2, 1) / x1.shape[1]
  return q1[:, None] * q2[None, :] + 2 * c ** 2


def network(width=8):
  return stax.serial(stax.Dense(width, W_std=1.5 ** 0.5, b_std=None), Square(),
                     stax.Dense(1, W_std=1., b_std=None))


def test_an_nt_style_layer_matches_its_closed_form_in_serial():
  nngp = network()[2](X1, X2, "nngp")
  np.testing.assert_allclose(nngp, closed_form(X1, X2, 1.5), rtol=1e-12)


@pytest.mark.slow
def test_an_nt_style_layer_agrees_with_its_finite_network():
  check_monte_carlo(network(512), X1, X2, n_samples=512, bias=0.)


def test_get_reads_any_kernel_field():
  kernel_fn = network()[2]
  assert kernel_fn(X1, X2, "is_gaussian") is True
  assert kernel_fn(X1, X2, ("shape1", "shape2")) == ((4, 1), (3, 1))
  assert kernel_fn(X1, X2, "diagonal_batch") is True


@pytest.mark.parametrize("get", [None, "nngp", ("ntk", "nngp")])
def test_every_get_form_and_batch(get):
  kernel_fn = network()[2]
  want = kernel_fn(X1, X2, get)
  got = nt.batch(kernel_fn, 2)(X1, X2, get)
  for g, w in zip(jax.tree_util.tree_leaves(got),
                  jax.tree_util.tree_leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-12)


def test_a_layer_without_decorators_works_inside_serial():
  """A raw NT triple (no `@stax.layer`) is converted by `serial` itself."""
  raw = (lambda key, s: (s, ()), lambda p, x, **kw: x ** 2, square_rule)
  nngp = stax.serial(stax.Dense(8, W_std=1., b_std=None), raw,
                     stax.Dense(1, b_std=None))[2](X1, None, "nngp")
  np.testing.assert_allclose(nngp, closed_form(X1, None), rtol=1e-12)


def test_the_kernel_fn_of_a_decorated_layer_takes_raw_inputs():
  """`@stax.layer` lets the layer's kernel_fn start from inputs, as NT's."""
  @stax.layer
  def Scale(c):  # pylint: disable=invalid-name
    def rule(k, **kwargs):
      del kwargs
      return k.replace(nngp=c * k.nngp, cov1=c * k.cov1)
    return (lambda key, s: (s, ()), lambda p, x, **kw: c ** 0.5 * x, rule)

  np.testing.assert_allclose(Scale(3.)[2](X1, None, "nngp"),
                             3. * X1 @ X1.T / 3, rtol=1e-12)


def test_requirements_choose_the_blocks_a_rule_sees():
  seen = []

  @stax.layer
  def Spy():  # pylint: disable=invalid-name
    @stax.requires(diagonal_batch=False, diagonal_spatial=stax.Diagonal(
        input=stax.Bool.YES, output=stax.Bool.YES))
    def rule(k, **kwargs):
      del kwargs
      seen.append((k.diagonal_batch, k.diagonal_spatial))
      return k
    return (lambda key, s: (s, ()), lambda p, x, **kw: x, rule)

  Spy()[2](RNG.normal(size=(2, 5, 3)), None, "nngp")
  assert seen == [(False, True)]


@pytest.mark.parametrize("req,diag", [
    (None, Diag.PRESERVES), (True, Diag.PRESERVES), (False, Diag.NEEDS_FULL),
    ("Diagonal()", Diag.PRESERVES),
    ("Diagonal(output=Bool.YES)", Diag.REMOVES),
    ("Diagonal(input=Bool.NO, output=Bool.YES)", Diag.REMOVES_FULL),
    ("Diagonal(input=Bool.MAYBE)", Diag.NEEDS_FULL),
    ("Diagonal(output=Bool.MAYBE)", Diag.ZEROES_OFF_DIAGONAL),
])
def test_nt_requirements_map_onto_diag(req, diag):
  if isinstance(req, str):
    req = eval(req, {"Diagonal": stax.Diagonal, "Bool": stax.Bool})  # pylint: disable=eval-used
  assert to_diag(req) is diag


def test_diagonal_composition_is_associative():
  values = [stax.Diagonal(input=i, output=o) for i in stax.Bool
            for o in stax.Bool]
  for a in values:
    for b in values:
      for c in values:
        assert (a >> b) >> c == a >> (b >> c)
        assert a & b == b & a


def test_a_layer_returning_the_wrong_number_of_functions_is_a_clear_error():
  @stax.layer
  def Broken():  # pylint: disable=invalid-name
    return (lambda key, s: (s, ()),)

  with pytest.raises(ValueError, match="init_fn, apply_fn, kernel_fn"):
    Broken()


def test_masking_with_a_custom_mask_fn_reaches_apply_and_kernel():
  """A 4th function, mask_fn, carries the mask in both the finite and the
  infinite network; masked entries contribute nothing."""
  @stax.layer
  @stax.supports_masking(remask_kernel=True)
  def SumChannels():  # pylint: disable=invalid-name
    def init_fn(key, s):
      del key
      return s[:-1] + (1,), ()

    def apply_fn(params, x, mask=None, **kwargs):
      del params, kwargs
      assert mask is not None
      return jnp.sum(x, -1, keepdims=True)

    def rule(k, **kwargs):
      del kwargs
      return k

    def mask_fn(mask, input_shape):
      del input_shape
      return jnp.all(mask, -1, keepdims=True)

    return init_fn, apply_fn, rule, mask_fn

  init_fn, apply_fn, _ = SumChannels()
  x = np.array([[1., 2.], [9., 9.]])
  out = apply_fn((), x, mask_constant=9.)
  assert isinstance(out, stax.MaskedArray)
  np.testing.assert_array_equal(out.mask, [[False], [True]])
  np.testing.assert_array_equal(stax.unmask_fn(apply_fn)((), x,
                                                         mask_constant=9.),
                                [[3.], [0.]])
  assert init_fn(None, (2, 2))[0] == (2, 1)
