"""nt-dense's hook implementations: the layers it registers."""

from ntcore.registry import LayerSpec, hookimpl

from nt_dense import dense, rectified


@hookimpl
def register_layers():
  return [
      LayerSpec("Dense", dense.Dense),
      LayerSpec("ABRelu", rectified.ABRelu),
      LayerSpec("Relu", rectified.Relu),
      LayerSpec("LeakyRelu", rectified.LeakyRelu),
      LayerSpec("Abs", rectified.Abs),
  ]
