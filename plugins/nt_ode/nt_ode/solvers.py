"""diffrax's adaptive solvers behind ntcore's `OdeSolver` protocol.

Each solver takes adaptive steps with a PID step-size controller on the
tolerances it is given; the error norm is the RMS over every element of the
state, scaled by `atol + rtol * |y|` — the rule of NT's
`jax.experimental.ode.odeint`, so `dopri5` at rtol = atol = 1.4e-8 reproduces
NT's numbers. Values at the requested times come from each method's dense
interpolant, as odeint's do, where that interpolant is of the method's order
(dopri5, tsit5, dopri8); the others (bosh3, kvaerno3, kvaerno5) only have a
third-order Hermite interpolant, so their steps land on every requested time
instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional


MAX_STEPS = 2 ** 16
"""Default step budget: an explicit method needs about `lambda_max * t / 3`
steps on an NTK whose largest eigenvalue (in the loss's units) is
`lambda_max`; past the budget the solve raises instead of returning a
partial answer. Raise it with `solver_options={"max_steps": ...}`, or use an
implicit method (`kvaerno5`) for stiff problems."""


@dataclasses.dataclass(frozen=True)
class DiffraxSolver:
  """An `OdeSolver` running a diffrax method with adaptive steps.

  Attributes:
    method: name of the diffrax solver class (`"Dopri5"`), built per call;
      diffrax is imported on first use, so loading the plugin stays cheap.
    doc: one line for listings.
    land_on_ts: step exactly onto every requested time rather than
      interpolate between steps; for methods whose interpolant is of lower
      order than the method.
  """

  method: str
  doc: str = ""
  land_on_ts: bool = False

  def __call__(self, fn, y0, ts, *, rtol: float, atol: float,
               max_steps: Optional[int] = MAX_STEPS,
               dt0: Optional[float] = None,
               dtmax: Optional[float] = None) -> Any:
    """Solves `dy/dt = fn(t, y)`, `y(ts[0]) = y0`; returns `y` at every `ts`.

    Args:
      fn: vector field `fn(t, y)`.
      y0: initial state, a pytree.
      ts: `(n,)` non-decreasing finite times; `ts[0]` is the time of `y0`.
      rtol, atol: local error tolerances of the PID controller.
      max_steps: step budget (accepted and rejected); reaching it raises.
      dt0: first step size; None lets diffrax choose it (Hairer's rule).
      dtmax: largest step size, or None.

    Returns:
      `y0`'s structure with a leading axis of length `n` on every leaf.
    """
    import diffrax  # pylint: disable=import-outside-toplevel
    term = diffrax.ODETerm(lambda t, y, args: fn(t, y))
    controller = diffrax.PIDController(rtol=rtol, atol=atol, dtmax=dtmax)
    if self.land_on_ts:
      controller = diffrax.ClipStepSizeController(controller, step_ts=ts)
    solution = diffrax.diffeqsolve(
        term, getattr(diffrax, self.method)(), ts[0], ts[-1], dt0, y0,
        saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller,
        max_steps=max_steps)
    return solution.ys


SOLVERS = {
    "dopri5": DiffraxSolver(
        "Dopri5",
        "Dormand-Prince 5(4), explicit; NT's odeint method and the default."),
    "tsit5": DiffraxSolver(
        "Tsit5",
        "Tsitouras 5(4), explicit; often fewer steps than dopri5."),
    "dopri8": DiffraxSolver(
        "Dopri8",
        "Dormand-Prince 8(7), explicit; for very tight tolerances."),
    "bosh3": DiffraxSolver(
        "Bosh3",
        "Bogacki-Shampine 3(2), explicit; cheap at loose tolerances.",
        land_on_ts=True),
    "kvaerno3": DiffraxSolver(
        "Kvaerno3",
        "Kvaerno 3(2), implicit (ESDIRK); stiff problems, loose tolerances.",
        land_on_ts=True),
    "kvaerno5": DiffraxSolver(
        "Kvaerno5",
        "Kvaerno 5(4), implicit (ESDIRK); stiff problems: ill-conditioned "
        "kernels, long training times.",
        land_on_ts=True),
}
"""Every solver `nt-ode` registers, by name."""
