"""Monte Carlo kernels converging to the analytic ones (NT paper Figure 2).

`nt.monte_carlo_kernel_fn` averages the empirical NNGP and NTK of
`n_samples` randomly initialized finite networks; as the networks get wider
(the widening factor `k` of the WideResNet) and as more of them are
averaged, the estimate approaches the infinite-width kernel of the same
`ntcore.models.WideResnet`. The distance is the paper's relative squared
Frobenius norm `|K - K_{k,n}|_F^2 / |K|_F^2`. The paper uses WRN-28-k on
8x8-downsampled CIFAR-10; here a WRN-10-k (one block per group) on a few of
scikit-learn's 8x8 digits.

The estimate's variance falls like `1 / (k n)` (more channels and more
samples both average more independent units); its bias, `O(1 / k)`, does
not fall with `n`. Both show in the table.

Run: `python examples/mc_convergence.py` (needs scikit-learn, nt-montecarlo).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import ntcore as nt
from ntcore import models, stax


def images(n: int, seed: int = 0) -> np.ndarray:
  """`n` digits as NHWC images `(n, 8, 8, 1)` in [0, 1]."""
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  data = load_digits()
  idx = np.random.default_rng(seed).permutation(len(data.target))[:n]
  return data.images[idx][..., None] / 16.


def trunk(block_size: int, k: int):
  """`ntcore.models.WideResnet` without its readout: the penultimate layer.

  Its `64 k` output channels are what the MC NNGP averages over (the paper
  does the same; one logit would give a rank-one estimate per sample).
  """
  return stax.serial(stax.Conv(16, (3, 3), padding="SAME"),
                     models.WideResnetGroup(block_size, int(16 * k)),
                     models.WideResnetGroup(block_size, int(32 * k), (2, 2)),
                     models.WideResnetGroup(block_size, int(64 * k), (2, 2)),
                     stax.GlobalAvgPool())


def relative_distance(k: np.ndarray, k_mc: np.ndarray) -> float:
  """`|K - K_mc|_F^2 / |K|_F^2`, the NT paper's Figure 2 distance."""
  return float(np.sum((k - k_mc) ** 2) / np.sum(k ** 2))


def run(ks=(1, 2, 4), samples=(1, 4, 16), n_images: int = 4,
        block_size: int = 1, seed: int = 0, echo=print,
        gets=("nngp", "ntk")) -> dict:
  """Distances of the MC NNGP and/or NTK (`gets`) to the analytic ones.

  Returns:
    `{"ks": tuple, "samples": tuple, "nngp": (K, S), "ntk": (K, S)}`
    (the kernels in `gets`), rows by widening factor, columns by sample
    count.
  """
  x = images(n_images, seed)
  # As the paper: the NNGP of the penultimate layer (`trunk`), the NTK of
  # the network with one output (the logits are i.i.d. given the input).
  exact = {}
  if "nngp" in gets:
    exact["nngp"] = np.asarray(trunk(block_size, 1)[2](x, None, "nngp"))
  if "ntk" in gets:
    exact["ntk"] = np.asarray(models.WideResnet(block_size, 1, 1)[2](
        x, None, "ntk"))
  dist = {g: np.zeros((len(ks), len(samples))) for g in gets}
  start = time.perf_counter()
  for i, k in enumerate(ks):
    nets = {"nngp": lambda: trunk(block_size, k),
            "ntk": lambda: models.WideResnet(block_size, k, num_classes=1)}
    for g in gets:
      init_fn, apply_fn, _ = nets[g]()
      mc = nt.monte_carlo_kernel_fn(init_fn, apply_fn,
                                    jax.random.PRNGKey(seed + i),
                                    n_samples=samples)
      for j, est in enumerate(mc(x, None, g)):
        dist[g][i, j] = relative_distance(exact[g], np.asarray(est))
  result = {"ks": tuple(ks), "samples": tuple(samples), **dist}
  echo(f"|K - K_mc|^2 / |K|^2 for WRN-{6 * block_size + 4}-k on {n_images} "
       f"digits ({time.perf_counter() - start:.1f}s):")
  for g in gets:
    echo(f"{g.upper():<5} {'k':>3} " + "".join(
        f"{'n=' + str(n):>9}" for n in samples))
    for k, row in zip(ks, dist[g]):
      echo(f"{'':<5} {k:>3g} " + "".join(f"{v:>9.4f}" for v in row))
  return result


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--ks", type=float, nargs="+", default=[1, 2, 4])
  parser.add_argument("--samples", type=int, nargs="+", default=[1, 4, 16])
  parser.add_argument("--images", type=int, default=4)
  args = parser.parse_args(argv)
  # float64 for the analytic kernels (the paper's MC runs are float32; the
  # estimates here follow the x64 default as well).
  jax.config.update("jax_enable_x64", True)
  ks = tuple(k if k % 1 else int(k) for k in args.ks)  # 1.0 -> 1
  run(ks=ks, samples=tuple(args.samples), n_images=args.images)


if __name__ == "__main__":
  main()
