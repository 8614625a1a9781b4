"""Errors raised by ntcore and its plugins.

Every error is an `NtcoreError`. Messages say what was wrong, what was
expected, and how to fix it; long ones live here as module constants so that
the same advice is not retyped in several places.
"""

from __future__ import annotations


class NtcoreError(Exception):
  """Base class of every error ntcore raises on purpose."""


class LayerNotInstalledError(NtcoreError, AttributeError):
  """A layer or estimator name that no installed plugin registers.

  Also an `AttributeError`, so `hasattr(stax, "Conv")` is simply False.
  """


class LayerNameClashError(NtcoreError, AttributeError):
  """Two plugins register the same bare name."""


class KernelRequirementError(NtcoreError, ValueError):
  """A layer received an input kernel it cannot transform."""


class ShapeError(NtcoreError, ValueError):
  """Inputs or layer arguments with shapes that do not fit together."""


class PluginLoadError(NtcoreError):
  """A plugin failed to import or to register; the others still load."""


class SingularKernelError(NtcoreError, ValueError):
  """A kernel matrix that cannot be factorized in the working precision."""


INSTALL_HINT = "pip install -e plugins/{package}"

NOT_INSTALLED = (
    "{where}{name} is not installed.\n"
    "  Installed {what} plugins: {installed}.\n"
    "{provider}"
)

PROVIDED_BY = "  {name} is provided by the {dist} plugin:  {install}\n"

UNKNOWN_NAME = "  No known plugin provides {name}.{suggest}\n"

CLASH = (
    "{name} is registered by more than one plugin: {plugins}.\n"
    "  Use a qualified name ({qualified}), or load only one of them with\n"
    "  NTCORE_LOAD_PLUGINS, or uninstall one."
)

NOT_GAUSSIAN = (
    "{layer} needs a Gaussian input kernel, but {previous} outputs a "
    "non-Gaussian one. Put an affine layer (Dense or Conv) between them "
    "(NT paper section 3: a nonlinearity's kernel is an expectation over "
    "Gaussian pre-activations)."
)
