"""`StaxKernel`: any ntcore network's NNGP or NTK as a scikit-learn `Kernel`.

`GaussianProcessRegressor(kernel=StaxKernel())`, `KernelRidge(kernel=...)`
and `SVC(kernel=StaxKernel())` then use the infinite-width network's kernel.
`W_std` and `b_std` are scikit-learn hyper-parameters: `theta` holds their
logarithms, and `eval_gradient=True` returns `dK/dtheta = v dK/dv` (`v` each
value), computed by forward-mode `jax.jacfwd` through the network's
`kernel_fn` rebuilt at the traced values — so the GP's own optimizer fits
them by marginal likelihood. Combine with scikit-learn kernels as usual
(`StaxKernel() + WhiteKernel()`).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from nt_sklearn import _compute, networks
from nt_sklearn.errors import EstimatorParamError


class StaxKernel(Kernel):
  """The NNGP (or NTK) of a network, with `W_std` and `b_std` to fit.

  Args:
    network: None (fully-connected, from `depth` and `nonlinearity`) or a
      factory returning a stax triple; it is called with `W_std`, `b_std`
      and those of `depth`, `nonlinearity` its signature names, plus
      `network_params`. (A fixed triple has no hyper-parameters to fit:
      pass a factory.)
    depth: hidden layers of the default network.
    nonlinearity: stax name of the default network's nonlinearity.
    network_params: further keyword arguments of the factory.
    get: `"nngp"` or `"ntk"`.
    W_std: weight standard deviation, > 0.
    b_std: bias standard deviation, > 0.
    W_std_bounds: `(low, high)` for the optimizer, or `"fixed"`.
    b_std_bounds: `(low, high)` for the optimizer, or `"fixed"`.
  """

  def __init__(self, network: Any = None, depth: int = 1,
               nonlinearity: str = "Relu",
               network_params: Optional[dict] = None, get: str = "nngp",
               W_std: float = 1.5, b_std: float = 0.05,
               W_std_bounds: Any = (1e-2, 1e2), b_std_bounds: Any = (1e-4, 1e2)):
    self.network = network
    self.depth = depth
    self.nonlinearity = nonlinearity
    self.network_params = network_params
    self.get = get
    self.W_std = W_std
    self.b_std = b_std
    self.W_std_bounds = W_std_bounds
    self.b_std_bounds = b_std_bounds

  @property
  def hyperparameter_W_std(self) -> Hyperparameter:
    return Hyperparameter("W_std", "numeric", self.W_std_bounds)

  @property
  def hyperparameter_b_std(self) -> Hyperparameter:
    return Hyperparameter("b_std", "numeric", self.b_std_bounds)

  def _kernel_fn(self, W_std, b_std):
    if self.get not in ("nngp", "ntk"):
      raise EstimatorParamError(
          f"get={self.get!r} must be 'nngp' or 'ntk'.")
    if isinstance(self.network, tuple):
      raise EstimatorParamError(
          "StaxKernel needs a network factory, not a fixed triple: its "
          "W_std and b_std are hyper-parameters, so the network is rebuilt "
          "from them, e.g. network=lambda W_std, b_std: "
          "models.FullyConnected(2, W_std, b_std).")
    hyper = {"depth": self.depth, "nonlinearity": self.nonlinearity,
             "W_std": W_std, "b_std": b_std}
    return networks.build(self.network, hyper, self.network_params)

  def _hyper_names(self) -> list[str]:
    return [h.name for h in self.hyperparameters if not h.fixed]

  def __call__(self, X, Y=None, eval_gradient: bool = False):
    """`K(X, Y)` `(n, m)`; with `eval_gradient`, also `dK/dtheta` `(n, n, p)`.

    Raises:
      ValueError: (scikit-learn's rule) for `eval_gradient` with `Y`.
    """
    X = np.asarray(X, dtype=float)
    if Y is not None and eval_gradient:
      raise ValueError("Gradient can only be evaluated when Y is None.")
    fn = self._kernel_fn(self.W_std, self.b_std)
    k = _compute.kernel(fn, X, None if Y is None else np.asarray(Y, float),
                        self.get)
    if not eval_gradient:
      return k
    names = self._hyper_names()
    if not names:
      return k, np.empty((len(X), len(X), 0))
    key = (self.network, self.depth, self.nonlinearity,
           _items(self.network_params), self.get)
    try:
      hash(key)
    except TypeError:  # an unhashable argument: compile for this call only
      jac = _gradient_fn.__wrapped__(*key)
    else:
      jac = _gradient_fn(*key)
    log_values = jnp.log(jnp.asarray([self.W_std, self.b_std], dtype=float))
    n = len(X)
    grad = np.asarray(jac(log_values, jnp.asarray(_compute.pad(X))))
    keep = [("W_std", "b_std").index(name) for name in names]
    return k, grad[:n, :n][..., keep]

  def diag(self, X) -> np.ndarray:
    """`diag(K(X, X))`, `(n,)`, without the off-diagonal entries."""
    return _compute.diagonal(self._kernel_fn(self.W_std, self.b_std),
                             np.asarray(X, dtype=float), self.get)

  def is_stationary(self) -> bool:
    """False: the kernel depends on the inputs' norms, not only on `x - y`."""
    return False

  def __repr__(self) -> str:
    return (f"StaxKernel(get={self.get!r}, W_std={self.W_std:.3g}, "
            f"b_std={self.b_std:.3g})")


def _items(params: Optional[dict]):
  return None if params is None else tuple(sorted(params.items()))


@functools.lru_cache(maxsize=32)
def _gradient_fn(network, depth, nonlinearity, params_items, get):
  """Jitted `dK/d(log W_std, log b_std)` `(n, n, 2)` of padded inputs.

  Cached per network configuration, so the optimizer's repeated calls reuse
  one compiled function; the network is rebuilt inside the trace at the
  traced values (a stax network keeps the `W_std` it was built with).
  """
  params = dict(params_items or ())

  def of_log_values(log_values, x):
    w_std, b_std = jnp.exp(log_values)
    hyper = {"depth": depth, "nonlinearity": nonlinearity, "W_std": w_std,
             "b_std": b_std}
    return networks.build_uncached(network, hyper, params)(x, None, get)

  return jax.jit(jax.jacfwd(of_log_values))
