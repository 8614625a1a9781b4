"""Reference architectures: the NT paper's models and Myrtle.

Each function returns a `Layer` `(init_fn, apply_fn, kernel_fn)` built from
`ntcore.stax` names, which resolve through the layer registry: the core
imports no plugin, and a model whose layers are not installed raises
`LayerNotInstalledError` naming the plugin (`Conv` etc. come from nt-conv,
`Dense` and `Relu` from nt-dense).

* `WideResnet` — NT paper Listing 1 (WRN with global average pooling),
* `ConvOnly` — Listing 2 (convolutions, no pooling, `Flatten` readout),
* `FullyConnected` — Listing 3,
* `Myrtle` — Shankar et al. 2020's Myrtle CNN, with average pooling.

Widths only matter for the finite network: the kernels do not depend on
them (NTK parameterization), which is why the paper's listings use width 1.
"""

from __future__ import annotations

from ntcore import stax
from ntcore.layer import Layer

__all__ = ["ConvOnly", "FullyConnected", "Myrtle", "WideResnet",
           "WideResnetBlock", "WideResnetGroup"]

_MYRTLE_LAYERS = {5: (2, 1, 1), 7: (2, 2, 2), 10: (3, 3, 3)}


def WideResnetBlock(channels: int, strides: tuple[int, int] = (1, 1),
                    channel_mismatch: bool = False) -> Layer:
  """One residual block: `Relu-Conv-Relu-Conv` plus a shortcut, summed.

  The shortcut is the identity, or a strided 3x3 `Conv` when the block
  changes the number of channels or the resolution (`channel_mismatch`).
  """
  main = stax.serial(stax.Relu(),
                     stax.Conv(channels, (3, 3), strides, padding="SAME"),
                     stax.Relu(), stax.Conv(channels, (3, 3), padding="SAME"))
  shortcut = (stax.Conv(channels, (3, 3), strides, padding="SAME")
              if channel_mismatch else stax.Identity())
  return stax.serial(stax.FanOut(2), stax.parallel(main, shortcut),
                     stax.FanInSum())


def WideResnetGroup(n: int, channels: int,
                    strides: tuple[int, int] = (1, 1)) -> Layer:
  """`n` residual blocks; the first one changes channels and resolution."""
  blocks = [WideResnetBlock(channels, strides, channel_mismatch=True)]
  blocks += [WideResnetBlock(channels, (1, 1)) for _ in range(n - 1)]
  return stax.serial(*blocks)


def WideResnet(block_size: int, k: float, num_classes: int) -> Layer:
  """Wide residual network WRN-(6 block_size + 4)-k (NT paper Listing 1).

  Args:
    block_size: residual blocks per group (three groups).
    k: widening factor; the groups have `16 k`, `32 k` and `64 k` channels.
    num_classes: outputs of the final `Dense` layer.

  Returns:
    `Layer(init_fn, apply_fn, kernel_fn)` for NHWC images; the second and
    third groups halve the resolution, `GlobalAvgPool` ends the trunk.
  """
  return stax.serial(stax.Conv(16, (3, 3), padding="SAME"),
                     WideResnetGroup(block_size, int(16 * k)),
                     WideResnetGroup(block_size, int(32 * k), (2, 2)),
                     WideResnetGroup(block_size, int(64 * k), (2, 2)),
                     stax.GlobalAvgPool(), stax.Dense(num_classes))


def ConvOnly(depth: int, W_std: float = 1., b_std: float = 0.,
             width: int = 1, num_classes: int = 1) -> Layer:
  """All-convolutional network without pooling (NT paper Listing 2).

  `depth` x (3x3 SAME `Conv` + `Relu`), then `Flatten` and `Dense`. With no
  pooling the readout needs only same-position covariances, so the kernel
  is computed with `diagonal_spatial` (NT paper section 3.1).

  Args:
    depth: number of convolution + ReLU layers.
    W_std: weight standard deviation of every layer.
    b_std: bias standard deviation of every layer.
    width: channels of each convolution (finite network only).
    num_classes: outputs of the readout `Dense` layer.
  """
  layers = []
  for _ in range(depth):
    layers += [stax.Conv(width, (3, 3), W_std=W_std, b_std=b_std,
                         padding="SAME"), stax.Relu()]
  layers += [stax.Flatten(), stax.Dense(num_classes, W_std, b_std)]
  return stax.serial(*layers)


def FullyConnected(depth: int, W_std: float = 1., b_std: float = 0.,
                   width: int = 1, num_classes: int = 1) -> Layer:
  """Fully-connected ReLU network on flattened inputs (NT paper Listing 3).

  `Flatten`, then `depth` x (`Dense` + `Relu`), then a `Dense` readout.

  Args:
    depth: number of hidden layers.
    W_std: weight standard deviation of every layer.
    b_std: bias standard deviation of every layer.
    width: hidden units per layer (finite network only).
    num_classes: outputs of the readout layer.
  """
  layers = [stax.Flatten()]
  for _ in range(depth):
    layers += [stax.Dense(width, W_std, b_std), stax.Relu()]
  layers += [stax.Dense(num_classes, W_std, b_std)]
  return stax.serial(*layers)


def Myrtle(depth: int = 5, width: int = 1, W_std: float = 2 ** 0.5,
           b_std: float = 0., num_classes: int = 10) -> Layer:
  """Myrtle CNN (Shankar et al. 2020): 3x3 SAME `Conv`+`Relu` and 2x2 pools.

  Three groups of `Conv`+`Relu` (2, 1, 1 layers for depth 5; 2, 2, 2 for 7;
  3, 3, 3 for 10), a stride-2 `AvgPool((2, 2))` after the first two groups,
  then `GlobalAvgPool` and a `Dense` readout. (The original ends in three
  more 2x2 pools and `Flatten`, which equals `GlobalAvgPool` on 32x32
  images; the global pool works on any size.)

  Args:
    depth: 5, 7 or 10 (the number of layers with weights).
    width: channels of each convolution (finite network only).
    W_std: weight standard deviation (`sqrt(2)`: He initialization).
    b_std: bias standard deviation.
    num_classes: outputs of the readout layer.

  Raises:
    ValueError: for a depth other than 5, 7 or 10.
  """
  if depth not in _MYRTLE_LAYERS:
    raise ValueError(f"Myrtle(depth={depth!r}): the Myrtle family has depths "
                     f"{sorted(_MYRTLE_LAYERS)}.")

  def convs(n):
    return [layer for _ in range(n) for layer in (
        stax.Conv(width, (3, 3), W_std=W_std, b_std=b_std, padding="SAME"),
        stax.Relu())]

  first, second, third = _MYRTLE_LAYERS[depth]
  return stax.serial(*convs(first), stax.AvgPool((2, 2), strides=(2, 2)),
                     *convs(second), stax.AvgPool((2, 2), strides=(2, 2)),
                     *convs(third), stax.GlobalAvgPool(),
                     stax.Dense(num_classes, W_std, b_std))
