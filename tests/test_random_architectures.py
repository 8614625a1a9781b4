"""Random architectures: every analytic kernel against its finite network.

Hypothesis draws sequences of nt-dense and nt-conv layers (Dense and Conv
with `b_std` in {None, 0, 0.3} and both parameterizations, nonlinearities,
pooling, Flatten, residual FanOut/parallel/FanInSum blocks) and compares the
analytic NNGP and NTK with a Monte Carlo estimate over wide finite networks
built from the same layers (`ntcore.testing.check_monte_carlo`). This is
the test that catches a finite network disagreeing with its own kernel, as
when `b_std=0.` drew unit-variance biases in the standard
parameterization.

Error budget. Sampling error: `z = 6` standard errors, estimated from 16
independent group means, so `(mc - exact) / stderr` is Student-t with 15
degrees of freedom; a correct kernel fails an entry with probability
2.4e-5. Finite-width bias: a nonlinearity whose input is exactly Gaussian
(right after the first affine layer, which acts on the inputs) adds none;
every other one sees an empirical covariance of relative variance <= 2 /
width (Wishart), which its dual turns into an `O(2 / width)` relative bias
(Hanin & Nica 2019); allowed with a 3x margin, `6 m / width` relative to
the largest entry for `m` such nonlinearities.

Runs `NTCORE_RANDOM_ARCH_EXAMPLES` examples (4 by default, derandomized so
a run is reproducible); set it to e.g. 50 for a longer search.
"""

import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import ntcore.testing
from ntcore import NtcoreError, stax

WIDTH = 256
N_SAMPLES = 64
EXAMPLES = int(os.environ.get("NTCORE_RANDOM_ARCH_EXAMPLES", "4"))

NONLINEARITIES = {
    "Relu": stax.Relu, "Erf": stax.Erf, "Gelu": stax.Gelu, "Abs": stax.Abs,
    "Sin": stax.Sin, "ABRelu": lambda: stax.ABRelu(-0.4, 1.2),
}

# Edge cases first: hypothesis starts from (and shrinks towards) the first
# choice, so even the few examples of a CI run meet b_std=0., the standard
# parameterization and Conv.
affine_args = st.fixed_dictionaries(dict(
    W_std=st.sampled_from([1.5, 0.7, 1.0]),
    b_std=st.sampled_from([0., None, 0.3]),
    parameterization=st.sampled_from(["standard", "ntk"])))


@st.composite
def affine(draw, spatial):
  """(description, layer): a Dense, or while spatial, a Conv."""
  kw = draw(affine_args)
  if spatial and not draw(st.booleans()):
    filt = draw(st.sampled_from([(1, 1), (2, 1), (1, 2), (2, 2)]))
    padding = draw(st.sampled_from(["SAME", "CIRCULAR"]))
    return f"Conv{filt}{padding}{kw}", stax.Conv(WIDTH, filt, padding=padding,
                                                 **kw)
  return f"Dense{kw}", stax.Dense(WIDTH, **kw)


@st.composite
def architectures(draw):
  """`(names, layers, m)`: `m` nonlinearities with non-Gaussian inputs."""
  names, layers, m = [], [], 0

  def add(item):
    names.append(item[0])
    layers.append(item[1])

  def nonlinearity(gaussian):
    nonlocal m
    name = draw(st.sampled_from(sorted(NONLINEARITIES) + [None]))
    if name is not None:
      add((name, NONLINEARITIES[name]()))
      m += not gaussian
    return name is not None

  add(draw(affine(True)))
  nonlinearity(gaussian=True)
  for _ in range(draw(st.integers(0, 2))):
    kind = draw(st.sampled_from(["block", "pool", "residual"]))
    if kind == "block":
      add(draw(affine(True)))
      nonlinearity(gaussian=False)
    elif kind == "pool":
      add(("AvgPool(2,1)SAME", stax.AvgPool((2, 1), padding="SAME")))
    else:
      # Branches end affine, so the sum is Gaussian for what follows.
      inner_name, inner = draw(affine(True))
      inner_names = [inner_name]
      inner_layers = [inner]
      if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(NONLINEARITIES)))
        inner_names.append(name)
        inner_layers.append(NONLINEARITIES[name]())
        m += 1
      out_name, out = draw(affine(True))
      short_name, short = draw(affine(True))
      add((f"Residual([{', '.join(inner_names + [out_name])}], "
           f"[{short_name}])",
           stax.serial(stax.FanOut(2),
                       stax.parallel(stax.serial(*inner_layers, out), short),
                       stax.FanInSum())))
      nonlinearity(gaussian=False)
  add(draw(st.sampled_from([("Flatten", stax.Flatten()),
                            ("GlobalAvgPool", stax.GlobalAvgPool())])))
  kw = draw(affine_args)
  add((f"Dense readout{kw}", stax.Dense(32, **kw)))
  return names, layers, m


GETS = ["nngp", "ntk", ("ntk", "nngp"), ("nngp", "ntk", "cov1")]

rng = np.random.default_rng(0)
X1 = rng.normal(size=(2, 4, 3, 2))  # NHWC, non-square
X2 = rng.normal(size=(2, 4, 3, 2))


@pytest.mark.slow
# No shrinking: each example compiles a Monte Carlo estimator, so shrinking
# a failure would take many minutes; the message names the architecture.
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(arch=architectures(), same_inputs=st.booleans(),
       get=st.sampled_from(GETS),
       diagonal_batch=st.sampled_from([None, True, False]),
       diagonal_spatial=st.sampled_from([None, True, False]))
def test_random_architecture_agrees_with_its_finite_network(
    arch, same_inputs, get, diagonal_batch, diagonal_spatial):
  names, layers, m = arch
  note = " -> ".join(names)
  net = stax.serial(*layers)
  x2 = None if same_inputs else X2
  try:
    ntcore.testing.check_monte_carlo(net, X1, x2, key=jax.random.PRNGKey(0),
                                     n_samples=N_SAMPLES,
                                     bias=6 * m / WIDTH)
  except AssertionError as e:
    raise AssertionError(f"{note}: {e}") from e

  # Other `get` forms and diagonal requests give the same arrays, or (a
  # diagonal request some layer cannot honour) a clear error.
  full = net[2](X1, x2, ("nngp", "ntk", "cov1"))
  opts = {k: v for k, v in dict(diagonal_batch=diagonal_batch,
                                diagonal_spatial=diagonal_spatial).items()
          if v is not None}
  try:
    out = net[2](X1, x2, get, **opts)
  except NtcoreError:
    assert opts, f"{note}: get={get!r} without options raised"
    return
  fields = (get,) if isinstance(get, str) else get
  arrays = (out,) if isinstance(get, str) else tuple(out)
  # Round-off only, but arc-cosine duals (Relu, Abs, ABRelu) turn it into
  # sqrt(eps) ~ 1.5e-8 near |rho| = 1, once per such layer (up to 4 here):
  # rtol 1e-6 leaves a margin of ~15.
  for field, arr in zip(fields, arrays):
    arr, want = np.asarray(arr), np.asarray(getattr(full, field))
    if arr.ndim != want.ndim:  # a full (n1, n1, ...) cov1 against its diagonal
      arr, want = [np.moveaxis(np.diagonal(a, 0, 0, 1), -1, 0)
                   if a.ndim > min(arr.ndim, want.ndim) else a
                   for a in (arr, want)]
    np.testing.assert_allclose(arr, want, rtol=1e-6,
                               atol=1e-6 * np.abs(want).max(),
                               err_msg=f"{note}: {field} with {opts}")
