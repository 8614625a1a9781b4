"""linearize and taylor_expand: exactness on polynomials, convergence order, jit/grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntcore as nt
from nt_taylor import linearize, taylor_expand

rng = np.random.default_rng(0)
X = rng.normal(size=(5, 3))
PARAMS = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=(1, 4))}
DP = jax.tree_util.tree_map(lambda a: 0.3 * rng.normal(size=a.shape), PARAMS)


def shifted(scale):
  return jax.tree_util.tree_map(lambda a, d: a + scale * d, PARAMS, DP)


def cubic(params, x):
  """Degree 3 in the parameters."""
  h = x @ params["w"] + params["b"]
  return h ** 3 - 2 * h * params["b"] + 1.


def mlp(params, x):
  return jnp.tanh(x @ params["w"] + params["b"]).sum(-1, keepdims=True)


def test_registry_resolves_the_plugin_functions():
  assert nt.linearize is linearize and nt.taylor_expand is taylor_expand


@pytest.mark.parametrize("degree", [3, 4])
def test_exact_for_polynomials_of_that_degree(degree):
  p = shifted(1.)
  np.testing.assert_allclose(taylor_expand(cubic, PARAMS, degree)(p, X),
                             cubic(p, X), rtol=1e-12)


def test_lower_degree_is_not_exact_for_a_cubic():
  p = shifted(1.)
  err = np.abs(taylor_expand(cubic, PARAMS, 2)(p, X) - cubic(p, X)).max()
  assert err > 1e-3


def test_degree_zero_and_one():
  p = shifted(1.)
  np.testing.assert_allclose(taylor_expand(mlp, PARAMS, 0)(p, X),
                             mlp(PARAMS, X), rtol=1e-15)
  np.testing.assert_allclose(taylor_expand(mlp, PARAMS, 1)(p, X),
                             linearize(mlp, PARAMS)(p, X), rtol=1e-12)


def test_linearize_equals_function_plus_jvp():
  p = shifted(1.)
  _, jvp = jax.jvp(lambda q: mlp(q, X), (PARAMS,), (DP,))
  np.testing.assert_allclose(linearize(mlp, PARAMS)(p, X), mlp(PARAMS, X) + jvp,
                             rtol=1e-12)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_error_shrinks_like_step_to_the_power_degree_plus_one(degree):
  # Taylor's theorem: the remainder is O(s^(degree+1)); halving s divides
  # it by ~2^(degree+1). Allow 30% slack for the next-order term.
  f_k = taylor_expand(mlp, PARAMS, degree)
  errs = [np.abs(f_k(shifted(s), X) - mlp(shifted(s), X)).max()
          for s in (0.1, 0.05)]
  ratio = errs[0] / errs[1]
  assert ratio > 0.7 * 2 ** (degree + 1), (degree, ratio)


def test_jit_and_grad_through_expansions():
  f_lin = linearize(mlp, PARAMS)
  f_3 = taylor_expand(mlp, PARAMS, 3)
  p = shifted(1.)
  np.testing.assert_allclose(jax.jit(f_3)(p, X), f_3(p, X), rtol=1e-12)

  def loss(q):
    return jnp.sum(f_lin(q, X) ** 2)

  g = jax.grad(loss)(p)
  # The linearized model is linear in q: its loss gradient is 2 J^T f_lin.
  _, vjp = jax.vjp(lambda q: mlp(q, X), PARAMS)
  expected = vjp(2 * f_lin(p, X))[0]
  for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_negative_degree_raises():
  with pytest.raises(ValueError, match="degree >= 0"):
    taylor_expand(mlp, PARAMS, -1)


def test_taylor_expand_of_a_nested_pytree_output_is_exact_at_its_degree():
  """A degree-2 polynomial in `x`, returned as a tuple/dict/list pytree:
  its second-order expansion around any point is the function itself."""
  def f(x, w):
    return ({"list": [{"quadratic": 0.5 * jnp.dot(jnp.dot(x.T, w), x),
                       "linear": jnp.dot(w, x)}, w]},)

  x0 = jnp.ones((3, 1))
  w = jnp.arange(9.).reshape(3, 3)
  x = jnp.array([[0.5], [2.], [-1.]])
  got = nt.taylor_expand(f, x0, 2)(x, w)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
      got, f(x, w))
  # First order misses the quadratic term only.
  lin = nt.taylor_expand(f, x0, 1)(x, w)
  np.testing.assert_allclose(lin[0]["list"][0]["linear"],
                             f(x, w)[0]["list"][0]["linear"], rtol=1e-12,
                             atol=1e-12)
  assert not np.allclose(lin[0]["list"][0]["quadratic"],
                         f(x, w)[0]["list"][0]["quadratic"])
