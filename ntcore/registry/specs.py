"""What plugins return from their hooks: frozen spec records."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Literal, Union

from ntcore.errors import PluginLoadError

KernelKind = Literal["analytic", "numerical", "finite-only"]


def _check_callable(spec: str, name: Any, field: str, value: Any) -> None:
  # `stax.Slice[...]` is a factory used by indexing rather than calling.
  if isinstance(value, (str, bytes)) or not (
      callable(value) or hasattr(value, "__getitem__")):
    raise TypeError(f"{spec}({name!r}).{field} must be callable, got "
                    f"{type(value).__name__} {value!r}.")


def _first_line(obj: Any) -> str:
  doc = (getattr(obj, "__doc__", None) or "").strip()
  return doc.splitlines()[0].strip() if doc else ""


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """A layer a plugin offers.

  Attributes:
    name: the stax name (`"Dense"`), CapWords as in NT.
    factory: returns a `Layer(init_fn, apply_fn, kernel_fn)`.
    kernel: "analytic" (closed form), "numerical" (quadrature) or
      "finite-only" (no infinite-width kernel; use Monte Carlo).
    doc: one line for `ntcore list-layers`; defaults to the factory's first
      docstring line.
    plugin: the distribution that registered it; set by the registry.
  """

  name: str
  factory: Callable[..., Any]
  kernel: KernelKind = "analytic"
  doc: str = ""
  plugin: str = ""

  def __post_init__(self):
    _check_callable("LayerSpec", self.name, "factory", self.factory)
    if self.kernel not in ("analytic", "numerical", "finite-only"):
      raise ValueError(f"LayerSpec({self.name!r}).kernel must be 'analytic', "
                       f"'numerical' or 'finite-only', got {self.kernel!r}.")
    if not self.doc:
      object.__setattr__(self, "doc", _first_line(self.factory))


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
  """A top-level function or class a plugin offers (`ntcore.<name>`).

  Attributes:
    name: the attribute name under `ntcore`.
    fn: the callable, or a `"package.module:attribute"` reference to it,
      imported only when `ntcore.<name>` is first asked for (`load`). A
      plugin whose estimators need a heavy library offers them by reference,
      so that using another plugin's estimator does not import it: building
      the estimator registry imports every plugin's hook, and scikit-learn
      alone costs 2 s and 87 MB.
    doc: one line for listings; defaults to `fn`'s first docstring line
      (give it for a reference, which listing does not import).
    plugin: the distribution that registered it; set by the registry.
  """

  name: str
  fn: Union[Callable[..., Any], str]
  doc: str = ""
  plugin: str = ""

  def __post_init__(self):
    if isinstance(self.fn, str):
      module, _, attribute = self.fn.partition(":")
      if not module or not attribute.isidentifier():
        raise TypeError(
            f"EstimatorSpec({self.name!r}).fn must be callable or a "
            f"'package.module:attribute' reference, got {self.fn!r}.")
      return
    _check_callable("EstimatorSpec", self.name, "fn", self.fn)
    if not self.doc:
      object.__setattr__(self, "doc", _first_line(self.fn))

  def load(self) -> Callable[..., Any]:
    """The callable: `fn`, or the attribute its reference names.

    Raises:
      PluginLoadError: the reference cannot be imported or is not callable.
    """
    if not isinstance(self.fn, str):
      return self.fn
    module, _, attribute = self.fn.partition(":")
    try:
      value = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as e:
      raise PluginLoadError(
          f"Plugin {self.plugin or '?'} registers ntcore.{self.name} as "
          f"{self.fn!r}, which cannot be loaded: {type(e).__name__}: {e}. "
          f"Reinstall the plugin, or uninstall it if it is broken.") from e
    if not callable(value):
      raise PluginLoadError(
          f"Plugin {self.plugin or '?'} registers ntcore.{self.name} as "
          f"{self.fn!r}, a {type(value).__name__}, which is not callable.")
    return value


@dataclasses.dataclass(frozen=True)
class OdeSolverSpec:
  """A named ODE solver for `predict.gradient_descent` (see `OdeSolver`)."""

  name: str
  solver: Callable[..., Any]
  doc: str = ""
  plugin: str = ""

  def __post_init__(self):
    if not self.doc:
      object.__setattr__(self, "doc", _first_line(self.solver))
