"""Exact finite-width references for the kernel rules of linear layers.

A network linear in its parameters `theta ~ N(0, I)` (NTK parameterization,
one output channel) has `f(x) = J(x) theta`, so its output covariance is
exactly `E[f(x1) f(x2)^T] = J(x1) J(x2)^T` at any width, and its NTK is the
same `J J^T`. That is the infinite-width NNGP/NTK of the layer (channels are
i.i.d.), computed through the finite `apply_fn` alone: padding, strides,
dimension numbers and circular wrapping are checked against the forward pass,
to round-off.
"""

import jax
import jax.numpy as jnp
import numpy as np


def jacobian_kernel(layer, x1, x2, channel_axis=-1, batch_axis=0):
  """`J(x1) J(x2)^T` as `(n1, n2, h, h', w, w', ...)` (activation order)."""
  init_fn, apply_fn, _ = layer
  _, params = init_fn(jax.random.PRNGKey(0), x1.shape)

  def jac(x):
    def f(p):
      y = apply_fn(p, x)
      y = jnp.moveaxis(y, (batch_axis, channel_axis), (0, -1))
      assert y.shape[-1] == 1, "use one output channel"
      return y[..., 0]
    leaves = jax.tree_util.tree_leaves(jax.jacobian(f)(params))
    n_out = f(params).shape
    return jnp.concatenate([l.reshape(n_out + (-1,)) for l in leaves], -1)

  j1, j2 = jac(x1), jac(x2)
  d = j1.ndim - 2
  sp1 = "abcdefg"[:d]
  sp2 = "ABCDEFG"[:d]
  out = "".join(a + b for a, b in zip(sp1, sp2))
  return np.asarray(jnp.einsum(f"n{sp1}z,m{sp2}z->nm{out}", j1, j2))


def natural(k, field):
  """Array `field` of kernel `k` with its spatial groups in activation order."""
  m = np.asarray(getattr(k, field))
  if not k.is_reversed:
    return m
  nb = 1 if field in ("cov1", "cov2") and k.diagonal_batch else 2
  g = 1 if k.diagonal_spatial else 2
  groups = [list(range(nb + g * i, nb + g * (i + 1)))
            for i in range((m.ndim - nb) // g)]
  return m.transpose(list(range(nb)) + [a for grp in groups[::-1] for a in grp])



class Natural:
  """A kernel's arrays in activation order, as attributes."""

  def __init__(self, k):
    for field in ("nngp", "ntk", "cov1"):
      setattr(self, field, natural(k, field))

def spatial_diagonal(m, nb=2):
  """`(B, h, h', w, w')` -> `(B, h, w)`."""
  d = (m.ndim - nb) // 2
  letters = "abcdefg"[:d]
  return np.einsum("..." + "".join(c + c for c in letters) + "->..." + letters,
                   m)
