"""What plugins return from their hooks: frozen spec records."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal

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
  """A top-level function a plugin offers (`ntcore.<name>`)."""

  name: str
  fn: Callable[..., Any]
  doc: str = ""
  plugin: str = ""

  def __post_init__(self):
    _check_callable("EstimatorSpec", self.name, "fn", self.fn)
    if not self.doc:
      object.__setattr__(self, "doc", _first_line(self.fn))


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
