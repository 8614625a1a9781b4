"""`predict.ODEState`: NT's dataclass methods and its pytree."""

import jax
import jax.numpy as jnp

from ntcore import predict

FIELDS = ["fx_train", "fx_test", "qx_train", "qx_test"]  # NT's order


def test_asdict_and_astuple_hold_the_fields_in_order():
  a, b = jnp.ones((3, 1)), jnp.zeros((2, 1))
  state = predict.ODEState(a, b)
  d = state.asdict()
  assert list(d) == FIELDS
  assert d["fx_train"] is a and d["fx_test"] is b and d["qx_train"] is None
  t = state.astuple()
  assert len(t) == 4 and t[0] is a and t[1] is b and t[2:] == (None, None)
  assert predict.ODEState(*t).asdict().keys() == d.keys()


def test_replace_and_pytree():
  state = predict.ODEState(jnp.ones(2), qx_train=jnp.zeros(2))
  doubled = jax.tree_util.tree_map(lambda x: 2 * x, state)
  assert isinstance(doubled, predict.ODEState)
  assert float(doubled.asdict()["fx_train"][0]) == 2.
  assert doubled.fx_test is None
  assert state.replace(fx_test=jnp.ones(1)).astuple()[1].shape == (1,)
