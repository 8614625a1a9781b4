"""A tiny progress bar on stderr: blocks done / total, rate and ETA.

No dependency: one line, rewritten in place with a carriage return, at most
ten times a second; the final state is printed with a newline.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

_WIDTH = 24
_MIN_INTERVAL_S = 0.1


def _clock(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  return (f"{hours}:{minutes:02d}:{seconds:02d}" if hours
          else f"{minutes}:{seconds:02d}")


class Progress:
  """`Progress(total, done=already_done)`; call `advance(n)`, then `close()`.

  Args:
    total: number of blocks of the whole kernel.
    done: blocks already done before this run (resumed from a store); they
      count towards the bar but not towards the rate.
    enabled: draw anything at all.
    stream: where to draw (default `sys.stderr`).
    label: text before the bar.
  """

  def __init__(self, total: int, done: int = 0, enabled: bool = True,
               stream: Optional[TextIO] = None, label: str = "kernel"):
    self.total = total
    self.done = done
    self.enabled = enabled
    self.stream = sys.stderr if stream is None else stream
    self.label = label
    self._start_done = done
    self._start = time.monotonic()
    self._last_draw = 0.0
    self._drawn = ""
    self._draw(force=True)

  def advance(self, n: int = 1) -> None:
    """Marks `n` more blocks as done."""
    self.done += n
    self._draw(force=self.done >= self.total)

  def line(self) -> str:
    """The current line of text (without the carriage return)."""
    frac = self.done / self.total if self.total else 1.0
    filled = int(round(frac * _WIDTH))
    bar = "#" * filled + "." * (_WIDTH - filled)
    elapsed = time.monotonic() - self._start
    computed = self.done - self._start_done
    if self.done >= self.total:
      tail = f"done in {_clock(elapsed)}"
    elif computed > 0:
      eta = elapsed / computed * (self.total - self.done)
      tail = f"ETA {_clock(eta)}"
    else:
      tail = "ETA ?"
    return (f"{self.label} [{bar}] {self.done}/{self.total} blocks  {tail}")

  def _draw(self, force: bool = False) -> None:
    if not self.enabled:
      return
    now = time.monotonic()
    if not force and now - self._last_draw < _MIN_INTERVAL_S:
      return
    self._last_draw = now
    line = self.line()
    if line == self._drawn:
      return
    self.stream.write("\r" + line)
    self.stream.flush()
    self._drawn = line

  def close(self) -> None:
    """Draws the final state and ends the line."""
    if self.enabled and self._drawn:
      self._draw(force=True)
      self.stream.write("\n")
      self.stream.flush()
