"""Errors raised by ntcore and its plugins.

Every error is an `NtcoreError`. Messages say what was wrong, what was
expected, and how to fix it; long ones live here as module constants so that
the same advice is not retyped in several places.
"""

from __future__ import annotations


class NtcoreError(Exception):
  """Base class of every error ntcore raises on purpose."""


class PluginNotInstalledError(NtcoreError, LookupError):
  """A name (layer, estimator, ODE solver, executor) no loaded plugin registers.

  The base of the kind-specific errors below: `except PluginNotInstalledError`
  catches every one of them.
  """


class LayerNotInstalledError(PluginNotInstalledError, AttributeError):
  """A layer name (`stax.Conv`) that no loaded plugin registers.

  Also an `AttributeError`, so `hasattr(stax, "Conv")` is simply False.
  """


class EstimatorNotInstalledError(LayerNotInstalledError):
  """An estimator name (`nt.monte_carlo_kernel_fn`) no loaded plugin registers.

  An `AttributeError` too, so `hasattr(nt, "linearize")` is simply False. It
  derives from `LayerNotInstalledError` only because that class was raised
  for estimators before this one existed, so that `except
  LayerNotInstalledError` written then still catches it; new code catches
  this class or `PluginNotInstalledError`.
  """


class LayerNameClashError(NtcoreError, AttributeError):
  """Two plugins register the same bare name."""


class KernelRequirementError(NtcoreError, ValueError):
  """A layer received an input kernel it cannot transform."""


class ShapeError(NtcoreError, ValueError):
  """Inputs or layer arguments with shapes that do not fit together."""


class PluginLoadError(NtcoreError):
  """A plugin failed to import or to register; the others still load."""


class PluginHookError(PluginLoadError, TypeError):
  """A plugin hook returned something other than a list of its spec class."""


class UnknownPluginWarning(UserWarning):
  """`NTCORE_LOAD_PLUGINS` names a plugin that is not installed."""


class SingularKernelError(NtcoreError, ValueError):
  """A kernel matrix that cannot be factorized in the working precision."""


class OdeSolverNotInstalledError(PluginNotInstalledError):
  """`predict.gradient_descent` asked for an ODE solver no plugin registers."""


class PredictArgumentError(NtcoreError, ValueError):
  """Arguments of a `predict_fn` that do not fit together (times, outputs)."""


# How to install a plugin: from the source checkout the core was installed
# from in editable mode, or else from the package index by its name.
INSTALL_HINT = "pip install -e plugins/{package}"
INSTALL_FROM_INDEX = "pip install {dist}"

NOT_INSTALLED = (
    "{where}{name} is not installed.\n"
    "  Installed {what} plugins: {installed}.\n"
    "{provider}"
)

PROVIDED_BY = "  {name} is provided by the {dist} plugin:  {install}\n"

UNKNOWN_NAME = "  No known plugin provides {name}.{suggest}\n"

LOAD_ENV_SELECTS = (
    "  {env}={value!r} is set, so only the plugins it names are loaded: add "
    "the plugin to it, or unset it to load every installed plugin.\n"
)

BAD_HOOK_RESULT = (
    "{hook} must return a list of {expected}, but returned {got}. The "
    "plugin's entries are skipped; return e.g. [{expected}(name, ...)]."
)

UNKNOWN_SELECTED_PLUGIN = (
    "{env} names {names}, but no installed ntcore plugin is called so "
    "(installed: {installed}). Check the spelling (distribution names such "
    "as nt-dense), or install the plugin."
)

CLASH = (
    "{name} is registered by more than one plugin: {plugins}.\n"
    "  Use a qualified name ({qualified}), or load only one of them with\n"
    "  NTCORE_LOAD_PLUGINS, or uninstall one."
)

NOT_GAUSSIAN = (
    "{layer} needs a Gaussian input kernel, but {previous}. Put an affine "
    "layer (Dense or Conv) before {layer} "
    "(NT paper section 3: a nonlinearity's kernel is an expectation over "
    "Gaussian pre-activations)."
)

ODE_SOLVER_NOT_INSTALLED = (
    "predict.gradient_descent: ODE solver {name!r}{default} is not installed.\n"
    "  Installed ODE solvers: {installed}.{suggest}\n"
    "  The standard solvers ({standard}) come with the {dist} plugin:  "
    "{install}\n"
    "  Or pass your own object following ntcore.dynamics.OdeSolver as solver=."
)

ODE_INFINITE_TIME = (
    "predict.gradient_descent cannot integrate to t={t}: an ODE solver only "
    "reaches finite times (NT's odeint never returns here). Pass finite "
    "times; for MSE loss, predict.gradient_descent_mse(...)(t=None) gives "
    "the t = inf limit in closed form."
)


class NoAnalyticKernelError(NtcoreError, NotImplementedError):
  """A layer configuration whose infinite-width kernel has no closed form.

  Also a `NotImplementedError`, which is what NT raises in these cases.
  """


NO_ANALYTIC_KERNEL = (
    "{layer}: {what} has no known closed-form kernel ({why}).\n"
    "  Either {fix},\n"
    "  or estimate the kernel by sampling wide finite networks:\n"
    "    kernel_fn = nt.monte_carlo_kernel_fn(init_fn, apply_fn, key, "
    "n_samples)  (needs the nt-montecarlo plugin)."
)


class DemoArgumentError(NtcoreError, ValueError):
  """`ntcore demo` (`ntcore.demo.run`) given a size below its minimum."""


class NonFiniteKernelWarning(UserWarning):
  """A kernel with NaN or infinite entries computed from finite inputs."""


NON_FINITE_KERNEL = (
    "{what} has {count} non-finite entries although the inputs are finite: "
    "the kernel overflowed {dtype} (inputs of largest entry {scale:.3g}), or "
    "its integral diverges for these inputs (Gaussian, Exp). Normalise the "
    "inputs (e.g. to unit norm per example){x64}; for "
    "homogeneous nonlinearities (Relu, LeakyRelu, Abs, ABRelu) the NNGP and "
    "NTK scale exactly, so rescaling the inputs loses nothing."
)

MISSING_FAN_IN = (
    "{layer} received {n} kernels, one per branch of a parallel or FanOut, "
    "but it acts on one kernel. Combine the branches first: put FanInSum(), "
    "FanInConcat() or FanInProd() after the parallel block, before {layer}."
)


class BatchError(NtcoreError, ValueError):
  """`ntcore.batch` cannot split this computation into blocks."""


class BlockStoreError(NtcoreError):
  """An on-disk block store that cannot be used (unreadable, or written for a
  different computation)."""


class ModelLoadError(NtcoreError, ValueError):
  """`ntcore kernel MODEL`: MODEL does not name a callable returning a stax
  triple."""


class InputFileError(NtcoreError, ValueError):
  """`ntcore kernel`: an input file that is missing or not a `.npy` array."""


BLOCK_STORE_MISMATCH = (
    "The block store at {path} was written for a different computation: "
    "{what} differs (stored {stored}, now {now}).\n"
    "  Resume only with the same inputs, batch size, get and model, or delete "
    "{path} (or pass another store path) to start afresh."
)


NOT_GAUSSIAN_FAN_IN = (
    "\n  {fan_in} outputs a Gaussian kernel only if every branch it combines "
    "does. At least one branch here ends in a nonlinearity (or is the raw "
    "inputs): the sum of a non-Gaussian and a Gaussian branch is not "
    "Gaussian, and its second moments do not determine what {layer} does to "
    "it, so that kernel is not defined. End every branch with an affine "
    "layer (Dense, Conv, GlobalSelfAttention), or put one between {fan_in} "
    "and {layer}."
)
