"""The conformance suite plugins run over their layers (needs the `test` extra).

Given a network built around a layer, `check_kernel_fn` checks the
properties every kernel must have (shapes, jit == no-jit, batched ==
unbatched, symmetry, `diag(nngp) == cov1`, PSD, finiteness), and
`check_monte_carlo` compares the analytic kernel with a Monte Carlo estimate
over wide finite networks built from the same layers' `init_fn`/`apply_fn`.
The estimator comes from the registry (`nt-montecarlo`), so the core imports
no plugin; without it the check fails with the install line.
`check_every_layer_has_a_case` keeps a plugin's table of test cases in step
with the layers it registers.
"""

from __future__ import annotations

from typing import Iterable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ntcore.layer import Layer
from ntcore.registry import get_registry

__all__ = ["check_every_layer_has_a_case", "check_kernel_fn",
           "check_monte_carlo", "monte_carlo_estimate", "psd_violation"]


def check_every_layer_has_a_case(plugin: str, cases: Iterable[str]) -> None:
  """Asserts `cases` names exactly the layers plugin `plugin` registers.

  A plugin's conformance tests keep a table of cases, one per layer; this
  check makes a new layer without a case (or a case left behind by a removed
  layer) fail, rather than go untested. It asks the registry of the loaded
  plugins, so it also checks that the installed entry point registers them::

      def test_every_registered_layer_has_a_case():
        ntcore.testing.check_every_layer_has_a_case("nt-conv", CASES)

  Args:
    plugin: the plugin's distribution name (`"nt-conv"`), as the registry
      attributes layers.
    cases: the names that have a case (a dict's keys will do).

  Raises:
    AssertionError: naming the layers without a case and the cases without
      a layer, or saying the plugin registers no layer at all (not
      installed, or not selected by `NTCORE_LOAD_PLUGINS`).
  """
  cases = set(cases)
  layers = get_registry().layers
  registered = {s.name for s in layers.specs() if s.plugin == plugin}
  assert registered, (
      f"{plugin} registers no layers: is it installed, and selected if "
      f"NTCORE_LOAD_PLUGINS is set? Loaded layer plugins: "
      f"{', '.join(layers.plugins()) or 'none'}.")
  missing, extra = sorted(registered - cases), sorted(cases - registered)
  assert not missing and not extra, (
      f"{plugin}: layers without a case: {missing or 'none'}; cases for "
      f"layers it does not register: {extra or 'none'}.")


def psd_violation(mat: np.ndarray) -> float:
  """Most negative eigenvalue of a symmetric matrix, relative to its largest."""
  mat = np.asarray(mat, np.float64)
  eig = np.linalg.eigvalsh((mat + mat.T) / 2)
  scale = max(np.abs(eig).max(), np.finfo(np.float64).tiny)
  return float(max(-eig.min(), 0.) / scale)


def _flat_batch(mat: np.ndarray) -> np.ndarray:
  """`(n, n, <spatial>)` -> `(n * s, n * s)` Gram matrix over (example, position)."""
  mat = np.asarray(mat)
  n = mat.shape[0]
  if mat.ndim == 2:
    return mat
  d = (mat.ndim - 2) // 2
  # Interleaved (n, n, h, h', w, w') -> (n, h, w, n, h', w').
  order = [0] + [2 + 2 * i for i in range(d)] + [1] + [3 + 2 * i for i in range(d)]
  mat = mat.transpose(order)
  s = int(np.prod(mat.shape[1:1 + d]))
  return mat.reshape(n * s, n * s)


def check_kernel_fn(layer: Layer, x1, x2=None, *, rtol: float = 1e-9,
                    psd_tol: float = 1e-9, **kwargs) -> None:
  """Asserts the properties every kernel must have.

  Args:
    layer: the network (`Layer` or triple) to check.
    x1: inputs `(n1, ...)`; `x2`: inputs `(n2, ...)` or None.
    rtol: tolerance of equalities that hold exactly in exact arithmetic.
    psd_tol: allowed negative eigenvalue relative to the largest.
    **kwargs: passed to `kernel_fn`.

  Raises:
    AssertionError: naming the property that failed.
  """
  init_fn, apply_fn, kernel_fn = layer
  k = kernel_fn(x1, x2, ("nngp", "ntk", "cov1"), **kwargs)
  n1 = x1.shape[0]
  n2 = n1 if x2 is None else x2.shape[0]
  for name, m in zip(("nngp", "ntk"), k[:2]):
    assert m.shape[:2] == (n1, n2), f"{name} shape {m.shape}, expected ({n1}, {n2}, ...)"
    assert bool(jnp.all(jnp.isfinite(m))), f"{name} has non-finite entries"
    assert m.shape == k.nngp.shape, "nngp and ntk shapes differ"

  with jax.disable_jit():
    k_nojit = kernel_fn(x1, x2, ("nngp", "ntk"), **kwargs)
  for name, a, b in zip(("nngp", "ntk"), k[:2], k_nojit):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * _scale(a),
                               err_msg=f"{name}: jit != no-jit")

  # Batched == unbatched: the rows of a sub-batch are the same rows.
  if n1 > 1:
    half = kernel_fn(x1[: n1 // 2], x2 if x2 is not None else x1,
                     ("nngp", "ntk"), **kwargs)
    for name, a, b in zip(("nngp", "ntk"), k[:2], half):
      np.testing.assert_allclose(a[: n1 // 2], b, rtol=rtol,
                                 atol=rtol * _scale(a),
                                 err_msg=f"{name}: sub-batch rows differ")

  if x2 is None:
    for name, m in zip(("nngp", "ntk"), k[:2]):
      flat = _flat_batch(m)
      np.testing.assert_allclose(flat, flat.T, rtol=rtol,
                                 atol=rtol * _scale(flat),
                                 err_msg=f"{name} is not symmetric")
      violation = psd_violation(flat)
      assert violation <= psd_tol, f"{name} is not PSD ({violation:.2e})"
    diag = _batch_diagonal(k.nngp)
    cov1 = k.cov1 if k.cov1.shape[0] != n1 or k.cov1.ndim != k.nngp.ndim \
        else _batch_diagonal(k.cov1)
    np.testing.assert_allclose(diag, cov1, rtol=rtol, atol=rtol * _scale(diag),
                               err_msg="diag(nngp) != cov1")


def _batch_diagonal(m):
  return jnp.moveaxis(jnp.diagonal(m, axis1=0, axis2=1), -1, 0)


def _scale(a) -> float:
  return float(jnp.max(jnp.abs(a))) if a.size else 1.


def monte_carlo_estimate(layer: Layer, x1, x2, *, key, n_samples: int,
                         groups: int = 16, **kwargs):
  """Monte Carlo NNGP/NTK and their standard errors, from `groups` batches.

  One estimator (compiled once) yields running means after every group;
  differences of the running sums give the `groups` independent group means.

  Returns:
    `(mean, stderr)`, each a `(nngp, ntk)` pair of arrays: the average over
    all samples, and the standard deviation of the group means divided by
    `sqrt(groups)` (an error bar that needs no model of the estimator).
  """
  mc = get_registry().estimators.get("monte_carlo_kernel_fn").load()
  init_fn, apply_fn, _ = layer
  per = max(n_samples // groups, 1)
  counts = [per * (g + 1) for g in range(groups)]
  fn = mc(init_fn, apply_fn, key, counts, **kwargs)
  sums, previous = [], [0., 0.]
  for count, est in zip(counts, fn(x1, x2, ("nngp", "ntk"))):
    total = [count * np.asarray(e, np.float64) for e in est]
    sums.append([(t - p) / per for t, p in zip(total, previous)])
    previous = total
  stack = [np.stack([g[i] for g in sums]) for i in range(2)]
  mean = [st.mean(0) for st in stack]
  stderr = [st.std(0, ddof=1) / np.sqrt(groups) for st in stack]
  return mean, stderr


def check_monte_carlo(layer: Layer, x1, x2=None, *, key=None,
                      n_samples: int = 256, groups: int = 16, z: float = 6.,
                      bias: Optional[float] = None, **kwargs) -> None:
  """Asserts the analytic kernel agrees with a Monte Carlo estimate.

  The estimate's error has two parts: sampling error, measured by the
  spread of `groups` independent group means (it shrinks like
  `1/sqrt(n_samples * width)`), and the finite-width bias, `O(1/width)`
  (Hanin & Nica 2019), which the caller bounds with `bias` (relative to the
  largest analytic entry; 0 where the estimator is unbiased, e.g. one hidden
  layer). Each entry must satisfy
  `|mc - exact| <= z * stderr + (bias + 1e-12) * max|exact|`; the 1e-12 is a
  round-off floor for entries the estimator gets exactly. With the error bar
  estimated from `groups` means, `(mc - exact) / stderr` follows Student's t
  with `groups - 1` degrees of freedom: for 16 groups and z = 6 a correct
  kernel fails an entry with probability 2.4e-5.

  Args:
    layer: a network of wide finite layers (its width sets the bias).
    x1, x2: inputs.
    key: PRNG key; `jax.random.PRNGKey(1)` by default.
    n_samples: total number of random networks.
    groups: number of independent groups for the error bar.
    z: allowed multiple of the standard error.
    bias: allowed finite-width bias, relative to the largest entry.
    **kwargs: passed to `monte_carlo_kernel_fn`.
  """
  key = jax.random.PRNGKey(1) if key is None else key
  exact = layer[2](x1, x2, ("nngp", "ntk"))
  mean, stderr = monte_carlo_estimate(layer, x1, x2, key=key,
                                      n_samples=n_samples, groups=groups,
                                      **kwargs)
  for name, e, m, s in zip(("nngp", "ntk"), exact, mean, stderr):
    e = np.asarray(e)
    allowed = z * s + ((bias or 0.) + 1e-12) * np.abs(e).max()
    err = np.abs(m - e)
    worst = np.unravel_index(np.argmax(err - allowed), err.shape)
    assert np.all(err <= allowed), (
        f"{name}: Monte Carlo {m[worst]:.6g} vs analytic {e[worst]:.6g} at "
        f"{worst}; |diff| {err[worst]:.3g} > allowed {allowed[worst]:.3g} "
        f"(z={z} x stderr {s[worst]:.3g} + bias)")
