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


def save_figure(path: str, result: dict) -> None:
  """Writes the two-panel figure of `ntcore.demo.run`'s result to `path`.

  Left: mean train and test loss over training time, finite ensemble
  (dashed) and infinite-width closed form (solid). Right: outputs at the
  last time on the test inputs, infinite mean with a two-standard-deviation
  band (shaded) and the finite ensemble's mean and band (dashed).

  Args:
    path: output file; the format follows its suffix (`.png`).
    result: the dict returned by `ntcore.demo.run`.
  """
  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure  # no pyplot: no global backend state

  fig = Figure(figsize=(11, 4.2))
  ax_loss, ax_out = fig.subplots(1, 2)
  t = np.maximum(result["t"], 0.5)  # t = 0 drawn at 0.5 on the log axis
  for name, color in (("train", "tab:blue"), ("test", "tab:red")):
    ax_loss.plot(t, result[f"{name}_loss_inf"], color=color,
                 label=f"{name}, infinite width")
    ax_loss.plot(t, result[f"{name}_loss_finite"], "--", color=color,
                 label=f"{name}, finite ensemble")
  ax_loss.set(xscale="log", yscale="log", xlabel="step t",
              ylabel="mean loss", title="Loss over training")
  ax_loss.legend(fontsize=8)

  x = result["x_test"]
  mean_inf, std_inf = result["mean_inf"][-1], result["std_inf"][-1]
  mean_fin, std_fin = result["mean_finite"][-1], result["std_finite"][-1]
  ax_out.plot(x, np.sin(x), ":", color="gray", label="sin(x)")
  ax_out.plot(x, mean_inf, color="tab:blue", label="infinite width")
  ax_out.fill_between(x, mean_inf - 2 * std_inf, mean_inf + 2 * std_inf,
                      color="tab:blue", alpha=0.2)
  ax_out.plot(x, mean_fin, color="black", label="finite ensemble")
  for sign in (-1, 1):
    ax_out.plot(x, mean_fin + sign * 2 * std_fin, "--", color="black",
                linewidth=0.8)
  ax_out.plot(result["x"], result["y"], "o", color="tab:red",
              label="training data")
  ax_out.set(xlabel="x", ylabel="f(x)",
             title=f"Outputs at t = {int(result['t'][-1])} (2 std bands)")
  ax_out.legend(fontsize=8)
  fig.suptitle(f"Erf network, width {result['width']}: "
               f"{result['n_members']} finite networks vs infinite width")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
