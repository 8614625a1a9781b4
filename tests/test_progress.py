"""Progress bars: drawn on a terminal (a real pseudo-terminal here), silent
anywhere else, whatever the switch says."""

import io
import os
import pty
import re

import numpy as np
import pytest

import ntcore as nt
from ntcore import stax
from ntcore.parallel import _progress

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def terminal():
  """A text stream on the slave side of a pseudo-terminal, and a function
  that returns what was drawn on it so far."""
  master, slave = pty.openpty()
  stream = os.fdopen(slave, "w")

  def drawn() -> str:
    stream.flush()
    chunks = []
    os.set_blocking(master, False)
    while True:
      try:
        chunk = os.read(master, 65536)
      except BlockingIOError:
        break
      if not chunk:
        break
      chunks.append(chunk)
    return b"".join(chunks).decode()

  try:
    yield stream, drawn
  finally:
    stream.close()
    os.close(master)


def test_on_a_terminal_the_bar_is_drawn_in_place(terminal):
  stream, drawn = terminal
  bar = _progress.Progress(4, done=1, stream=stream, label="kernel")
  for _ in range(3):
    bar.advance(1)
  bar.close()
  text = drawn()
  assert "kernel (1 of 4 blocks loaded)" in text
  assert "3/3" in text and "\r" in text
  # Each redraw is padded to the widest line so far: no stale characters.
  # (The terminal turns the final "\n" into "\r\n".)
  frames = [f for f in (_ANSI.sub("", f).strip("\n")
                        for f in text.split("\r")) if f]
  assert len(frames) >= 4
  widest = 0
  for frame in frames:
    assert len(frame) >= widest
    widest = max(widest, len(frame))


@pytest.mark.parametrize("enabled", [None, True, False])
def test_off_a_terminal_nothing_is_written(enabled):
  stream = io.StringIO()
  bar = _progress.Progress(5, stream=stream, enabled=enabled)
  bar.advance(5)
  bar.close()
  assert stream.getvalue() == "" and not bar.shown


def test_switched_off_on_a_terminal_nothing_is_drawn(terminal):
  stream, drawn = terminal
  bar = _progress.Progress(5, stream=stream, enabled=False)
  bar.advance(5)
  bar.close()
  assert drawn() == ""


def test_batch_writes_no_progress_to_a_redirected_stderr(capfd):
  kernel_fn = stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(1))[2]
  x = np.random.default_rng(0).normal(size=(6, 2))
  for progress in (None, True):
    nt.batch(kernel_fn, 2, 0, progress=progress)(x, None, "nngp")
  assert capfd.readouterr().err == ""
