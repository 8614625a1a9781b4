"""Progress bars on stderr, drawn by click's `progressbar`, on a terminal only.

One implementation for `batch` (blocks) and `ntcore demo` (training steps).
A bar is drawn only when it is switched on and its stream is a terminal;
anywhere else (a redirected stderr, a log file, a test's capture) it writes
nothing at all, not even click's one-line label. click redraws the line in
place and pads it to the widest line drawn so far, so a shorter line leaves
no stale characters behind.
"""

from __future__ import annotations

import sys
from typing import Optional, TextIO

import click


def on_terminal(stream: Optional[TextIO] = None) -> bool:
  """Whether `stream` (default `sys.stderr`) is an interactive terminal."""
  stream = sys.stderr if stream is None else stream
  try:
    return bool(stream.isatty())
  except (AttributeError, ValueError):  # no isatty, or a closed stream
    return False


class Progress:
  """`Progress(total, done=already_done)`; call `advance(n)`, then `close()`.

  Args:
    total: number of units (blocks, steps) of the whole task.
    done: units already done before this run (blocks loaded from a store):
      named in the label, left out of the bar so that its rate and ETA are
      those of the work this run does.
    enabled: the switch; None or True draw on a terminal, False never.
    stream: where to draw (default `sys.stderr`).
    label: text before the bar.
    unit: what is counted, for the label.
  """

  def __init__(self, total: int, done: int = 0,
               enabled: Optional[bool] = True,
               stream: Optional[TextIO] = None, label: str = "kernel",
               unit: str = "blocks"):
    self.total = total
    self.done = done
    self.stream = sys.stderr if stream is None else stream
    self.shown = enabled is not False and on_terminal(self.stream)
    if done:
      label = f"{label} ({done} of {total} {unit} loaded)"
    self._bar = click.progressbar(
        length=max(total - done, 0), label=label, file=self.stream,
        hidden=not self.shown, show_pos=True, show_eta=True,
        show_percent=False, width=24)
    self._closed = False
    self._bar.render_progress()

  def advance(self, n: int = 1) -> None:
    """Marks `n` more units as done."""
    self.done += n
    self._bar.update(n)

  def close(self) -> None:
    """Draws the final state and ends the line (once)."""
    if self._closed:
      return
    self._closed = True
    self._bar.render_progress()
    self._bar.render_finish()
