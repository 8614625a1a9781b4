"""AUTO: the cost model's pieces, its choices, and that AUTO's kernel is right."""

import jax.numpy as jnp
import numpy as np
import pytest

from nt_montecarlo import NtkImplementation, empirical_ntk_fn
from nt_montecarlo import _args, _auto, _program

JC = NtkImplementation.JACOBIAN_CONTRACTION
SD = NtkImplementation.STRUCTURED_DERIVATIVES


def _normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def mlp(params, x):
  for w in params[:-1]:
    x = jnp.tanh(x @ w)
  return x @ params[-1]


def test_forward_flops_count_dense_layers_exactly():
  # x @ w: 2 N D H multiply-adds; tanh: N H; then 2 N H O.
  params = [_normal(0, (6, 32)), _normal(1, (32, 3))]
  x = _normal(2, (5, 6))
  prog = _program.trace(mlp, params, x)
  assert _auto.forward_flops(prog) == 2 * 5 * 6 * 32 + 5 * 32 + 2 * 5 * 32 * 3


def test_components_follow_the_cost_formulas():
  params = [_normal(0, (6, 32)), _normal(1, (32, 3))]
  x1, x2 = _normal(2, (5, 6)), _normal(3, (4, 6))
  prep = _args.prepare(mlp, {}, params, 0, x1, x2)
  comps = _auto.components(mlp, prep, params, x1, x2, (), ())
  f1 = 2 * 5 * 6 * 32 + 5 * 32 + 2 * 5 * 32 * 3
  f2 = f1 * 4 / 5
  # Per example (vmap_axes=0): O = 3 rows of reverse mode on each batch.
  assert comps[JC][0] == pytest.approx(3 * 3 * (f1 + f2))
  assert comps[SD][1] == pytest.approx(2 * 3 * (f1 + f2))
  # Jacobian contraction untraced: N1 N2 O^2 P multiply-adds.
  n_params = 6 * 32 + 32 * 3
  assert comps[JC][3] == pytest.approx(2 * 5 * 4 * 3 * 3 * n_params)
  assert comps[JC][4] == (5 * 3 + 4 * 3) * n_params
  # Structured einsums cost less than forming the parameter Jacobians.
  assert 0 < comps[SD][3] < comps[JC][3]


def test_auto_picks_structured_derivatives_for_a_wide_mlp():
  params = [_normal(0, (16, 256)), _normal(1, (256, 256)),
            _normal(2, (256, 10))]
  x1, x2 = _normal(3, (8, 16)), _normal(4, (8, 16))
  assert _auto.pick(mlp, x1, x2, params, vmap_axes=0) == SD
  costs = _auto.estimate(mlp, _args.prepare(mlp, {}, params, 0, x1, x2),
                         params, x1, x2, (-1,), ())
  assert all(np.isfinite(c) and c > 0 for c in costs.values())


def test_auto_kernel_equals_jacobian_contraction():
  params = [_normal(0, (6, 32)), _normal(1, (32, 3))]
  x1, x2 = _normal(2, (5, 6)), _normal(3, (4, 6))
  auto = empirical_ntk_fn(mlp, (), (), 0, NtkImplementation.AUTO)(
      x1, x2, params)
  jc = empirical_ntk_fn(mlp, (), (), 0, JC)(x1, x2, params)
  assert auto.shape == (5, 4, 3, 3)
  np.testing.assert_allclose(auto, jc, rtol=1e-12,
                             atol=1e-12 * np.abs(jc).max())
