"""The demo's figure (NT paper Figure 1): loss curves and predictions.

matplotlib is an optional extra (`pip install -e ".[plot]"`), imported only
inside `save_figure`; `have_matplotlib()` lets the caller say how to get
the plot instead of failing.
"""

from __future__ import annotations

import importlib.util

import numpy as np

PLOT_HINT = ('matplotlib is not installed, so no plot was written; '
             'install the plot extra for it:  pip install -e ".[plot]"')


def have_matplotlib() -> bool:
  """Whether `import matplotlib` would succeed."""
  return importlib.util.find_spec("matplotlib") is not None


FORMATS = ("png", "pdf", "svg")


def figure(result: dict):
  """The two-panel figure of `ntcore.demo.run`'s result (a matplotlib
  `Figure`, not attached to pyplot).

  Left: mean train and test loss over training time on log axes, finite
  ensemble (dashed) and infinite-width closed form (solid); step 0, which a
  log axis cannot show, is drawn at 0.5 and labelled "0" there, after a
  dotted line. Right: outputs at the last time on the test inputs: the
  infinite-width mean with its two-standard-deviation band (shaded) and the
  finite ensemble's mean with its band (dashed), each band in the legend.
  """
  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure  # no pyplot: no global backend state

  fig = Figure(figsize=(11, 4.2))
  ax_loss, ax_out = fig.subplots(1, 2)
  t = np.maximum(result["t"], _STEP0)
  for name, color in (("train", "tab:blue"), ("test", "tab:red")):
    ax_loss.plot(t, result[f"{name}_loss_inf"], color=color,
                 label=f"{name}, infinite width")
    ax_loss.plot(t, result[f"{name}_loss_finite"], "--", color=color,
                 label=f"{name}, finite ensemble")
  ax_loss.set(xscale="log", yscale="log",
              xlabel=f"step t (t = 0 drawn at {_STEP0})",
              ylabel="mean loss", title="Loss over training")
  decades = int(np.ceil(np.log10(max(float(np.max(result["t"])), 1.0))))
  ticks = [10.0 ** k for k in range(decades + 1)]
  ax_loss.set_xticks([_STEP0] + ticks,
                     ["0"] + [f"$10^{{{k}}}$" for k in range(decades + 1)])
  ax_loss.axvline(np.sqrt(_STEP0), color="gray", linestyle=":",
                  linewidth=0.8)
  ax_loss.legend(fontsize=8)

  x = result["x_test"]
  mean_inf, std_inf = result["mean_inf"][-1], result["std_inf"][-1]
  mean_fin, std_fin = result["mean_finite"][-1], result["std_finite"][-1]
  ax_out.plot(x, np.sin(x), ":", color="gray", label="sin(x)")
  ax_out.plot(x, mean_inf, color="tab:blue", label="infinite width, mean")
  ax_out.fill_between(x, mean_inf - 2 * std_inf, mean_inf + 2 * std_inf,
                      color="tab:blue", alpha=0.2,
                      label="infinite width, mean \u00b1 2 std")
  ax_out.plot(x, mean_fin, color="black", label="finite ensemble, mean")
  for sign in (-1, 1):
    ax_out.plot(x, mean_fin + sign * 2 * std_fin, "--", color="black",
                linewidth=0.8,
                label="finite ensemble, mean \u00b1 2 std" if sign < 0
                else None)
  ax_out.plot(result["x"], result["y"], "o", color="tab:red",
              label="training data")
  ax_out.set(xlabel="x", ylabel="f(x)",
             title=f"Outputs at t = {int(result['t'][-1])}")
  ax_out.legend(fontsize=8)
  fig.suptitle(f"Erf network, width {result['width']}: "
               f"{result['n_members']} finite networks vs infinite width")
  fig.tight_layout()
  return fig


# Where t = 0 goes on the log time axis (a step before the first step).
_STEP0 = 0.5


def save_figure(path: str, result: dict) -> None:
  """Writes `figure(result)` to `path`, in the format of its suffix
  (`.png`, `.pdf` or `.svg`).

  Args:
    path: output file.
    result: the dict returned by `ntcore.demo.run`.
  """
  fig = figure(result)
  fig.savefig(path, dpi=110)
