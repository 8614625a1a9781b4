"""`ntcore demo`: the NT paper's section 2.1 experiment, at a small size.

The finite ensemble is compared with the infinite one statistically: with
`M` members, the ensemble mean at an input has standard error
`std / sqrt(M)` and a sample variance has relative standard error
`sqrt(2 / (M - 1))`. Tolerances are 4 such standard errors (a two-sided
Gaussian tail of 6e-5); the finite width (128) adds an O(1/width) bias,
small against them at the times tested.
"""

import io
import os
import pty

import numpy as np
import pytest
from click.testing import CliRunner

from ntcore import _demo_ensemble, _demo_plot, demo
from ntcore.cli import main

M = 64


def erf_network_kernels(x):
  """NNGP and NTK of the demo network, by the recursions written out in numpy.

  Dense: K' = W^2 K + b^2, T' = K' + W^2 T. Erf: K' = (2/pi) arcsin(2c / r),
  T' = T (4/pi) / sqrt(r^2 - 4c^2), r^2 = (1 + 2 q1)(1 + 2 q2).
  """
  w2, b2 = 1.5 ** 2, 0.05 ** 2
  k = w2 * x @ x.T + b2
  t = k.copy()
  for _ in range(2):
    q = np.diag(k)
    r2 = np.outer(1 + 2 * q, 1 + 2 * q)
    dot = 4 / np.pi / np.sqrt(r2 - 4 * k ** 2)
    k = 2 / np.pi * np.arcsin(2 * k / np.sqrt(r2))
    t = t * dot
    k = w2 * k + b2
    t = k + w2 * t
  return k, t


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
  """One small `ntcore demo` through the CLI: (click result, run's dict, png).

  `demo.run` is wrapped (not replaced) to keep the numbers it returns.
  """
  png = tmp_path_factory.mktemp("demo") / "demo.png"
  runs = []
  real_run = demo.run
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(demo, "run", lambda *a, **kw: runs.append(real_run(*a, **kw)))
    result = CliRunner().invoke(main, [
        "demo", "--width", "128", "--members", str(M), "--steps", "100",
        "--plot", str(png)])
  assert result.exit_code == 0, result.output
  return result, runs[0], png


@pytest.fixture(scope="module")
def small_run(cli_run):
  return cli_run[1]


@pytest.mark.slow  # shares the ~10 s `cli_run` fixture
def test_kernels_equal_the_written_out_recursion(small_run):
  nngp, ntk = erf_network_kernels(small_run["x"].reshape(-1, 1))
  np.testing.assert_allclose(small_run["nngp"], nngp, rtol=1e-12)
  np.testing.assert_allclose(small_run["ntk"], ntk, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("step", [0, 10, 100])
def test_finite_ensemble_matches_the_infinite_one(small_run, step):
  r = small_run
  i = int(np.searchsorted(r["t"], step))
  assert r["t"][i] == step
  # Mean: the errors at nearby inputs are strongly correlated (same members),
  # so their root mean square behaves like one Gaussian's |z|: <= 4 SE.
  gap = r["mean_finite"][i] - r["mean_inf"][i]
  se = r["std_inf"][i] / np.sqrt(M)
  assert np.sqrt(np.mean(gap ** 2)) <= 4 * np.sqrt(np.mean(se ** 2))
  # Variance: relative standard error sqrt(2 / (M - 1)) = 0.18 for M = 64.
  ratio = np.mean(r["std_finite"][i] ** 2) / np.mean(r["std_inf"][i] ** 2)
  assert abs(ratio - 1) <= 4 * np.sqrt(2 / (M - 1))
  # Test loss: the ensemble's is a mean over members, whose spread gives
  # its standard error.
  per_member = 0.5 * np.mean(
      (r["outputs_test"][i] - np.sin(r["x_test"])[None, :]) ** 2, axis=1)
  assert per_member.shape == (M,)
  np.testing.assert_allclose(per_member.mean(), r["test_loss_finite"][i])
  se_loss = per_member.std(ddof=1) / np.sqrt(M)
  assert abs(per_member.mean() - r["test_loss_inf"][i]) <= 4 * se_loss


@pytest.mark.slow  # shares the ~10 s `cli_run` fixture
def test_training_reduces_the_loss_of_both(small_run):
  r = small_run
  for kind in ("finite", "inf"):
    train = r[f"train_loss_{kind}"]
    assert np.all(np.isfinite(train))
    assert train[-1] < 0.1 * train[0]
    assert r[f"test_loss_{kind}"][-1] < 0.2 * r[f"test_loss_{kind}"][0]
  # At t = 0 the infinite ensemble's outputs are the NNGP prior.
  np.testing.assert_allclose(r["mean_inf"][0], 0, atol=1e-12)


@pytest.mark.slow  # shares the ~10 s `cli_run` fixture
def test_cli_prints_table_progress_and_writes_the_plot(cli_run):
  result, _, png = cli_run
  nngp, _ = erf_network_kernels(demo.data()[0])
  assert f"{nngp[0, 0]:.4f}" in result.stdout
  assert "train finite" in result.stdout and "test inf" in result.stdout
  table = [line.split() for line in result.stdout.splitlines()
           if line.split()[:1] in (["0"], ["10"], ["100"])]
  assert [row[0] for row in table] == ["0", "10", "100"]
  assert float(table[-1][1]) < float(table[0][1])  # train loss went down
  # CliRunner's stderr is no terminal: no progress bar, no "\r" frames.
  assert "steps" not in result.stderr and "\r" not in result.stderr
  if _demo_plot.have_matplotlib():
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"to {png}" in result.stdout
  else:
    assert "pip install" in result.stdout and not png.exists()


def test_cli_options_reach_the_demo(monkeypatch, tmp_path):
  seen = {}
  monkeypatch.setattr(demo, "run", lambda echo, **kw: seen.update(kw))
  png = tmp_path / "demo.png"
  result = CliRunner().invoke(main, [
      "demo", "--width", "16", "--members", "4", "--steps", "10",
      "--seed", "3", "--plot", str(png), "--no-plot", "--no-progress"])
  assert result.exit_code == 0, result.output
  assert result.stderr == ""
  assert seen == {"width": 16, "n_members": 4, "steps": 10, "seed": 3,
                  "plot": None, "progress": None}
  result = CliRunner().invoke(main, ["demo", "--plot", str(png)])
  assert result.exit_code == 0, result.output
  assert seen["plot"] == str(png) and callable(seen["progress"])
  assert (seen["width"], seen["n_members"], seen["steps"]) == (256, 64, 1000)


def test_without_matplotlib_the_demo_says_how_to_get_the_plot(
    monkeypatch, tmp_path):
  monkeypatch.setattr(_demo_plot, "have_matplotlib", lambda: False)
  lines, result = [], {"plot": None}
  png = tmp_path / "demo.png"
  demo._plot(lines.append, str(png), result)  # pylint: disable=protected-access
  assert result["plot"] is None and not png.exists()
  assert any('pip install -e ".[plot]"' in line for line in lines)


def _read_all(fd) -> str:
  os.set_blocking(fd, False)
  chunks = []
  while True:
    try:
      chunk = os.read(fd, 65536)
    except BlockingIOError:
      return b"".join(chunks).decode()
    chunks.append(chunk)


def test_progress_bar_draws_on_a_terminal_only():
  master, slave = pty.openpty()
  with os.fdopen(slave, "w") as stream:
    bar = _demo_ensemble.progress_bar(stream)
    bar(5, 10, 1.0)
    bar(10, 10, 2.0)
    stream.flush()
    drawn = _read_all(master)
  os.close(master)
  assert "training the ensemble" in drawn and "\r" in drawn
  assert "5/10" in drawn and drawn.endswith("\r\n")  # the line is ended
  assert drawn.split("\r")[-2].find("10/10") > 0  # last frame: all done
  redirected = io.StringIO()
  bar = _demo_ensemble.progress_bar(redirected)
  bar(10, 10, 2.0)
  assert redirected.getvalue() == ""


def _fake_result(steps=100):
  """A result dict of the shape `demo.run` returns (values arbitrary)."""
  t = demo.record_steps(steps)
  x = np.linspace(-np.pi, np.pi, 20)
  loss = 1 / (1 + t)
  return dict(t=t, x=x[::4], y=np.sin(x[::4]), x_test=x, width=8,
              n_members=4, train_loss_inf=loss, train_loss_finite=loss,
              test_loss_inf=2 * loss, test_loss_finite=2 * loss,
              mean_inf=np.tile(np.sin(x), (t.size, 1)),
              std_inf=np.full((t.size, x.size), 0.1),
              mean_finite=np.tile(np.sin(x), (t.size, 1)),
              std_finite=np.full((t.size, x.size), 0.2))


@pytest.mark.skipif(not _demo_plot.have_matplotlib(), reason="no matplotlib")
def test_figure_marks_step_zero_and_labels_both_bands():
  fig = _demo_plot.figure(_fake_result())
  ax_loss, ax_out = fig.axes
  ticks = dict(zip(ax_loss.get_xticks(),
                   (t.get_text() for t in ax_loss.get_xticklabels())))
  assert ticks[0.5] == "0"  # where step 0 is drawn
  assert "t = 0 drawn at 0.5" in ax_loss.get_xlabel()
  labels = ax_out.get_legend_handles_labels()[1]
  assert "infinite width, mean \u00b1 2 std" in labels
  assert "finite ensemble, mean \u00b1 2 std" in labels


@pytest.mark.skipif(not _demo_plot.have_matplotlib(), reason="no matplotlib")
@pytest.mark.parametrize("fmt, magic", [
    ("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_figure_formats(tmp_path, fmt, magic):
  path = tmp_path / f"demo.{fmt}"
  _demo_plot.save_figure(str(path), _fake_result())
  assert path.read_bytes()[:len(magic)] == magic


@pytest.mark.parametrize("args, plot", [
    ([], "ntcore-demo.png"), (["--format", "svg"], "ntcore-demo.svg"),
    (["--plot", "f.pdf"], "f.pdf"), (["--plot", "f", "--format", "pdf"],
                                     "f.pdf")])
def test_cli_format_picks_the_figure_file(monkeypatch, args, plot):
  seen = {}
  monkeypatch.setattr(demo, "run", lambda echo, **kw: seen.update(kw))
  result = CliRunner().invoke(main, ["demo", *args])
  assert result.exit_code == 0, result.output
  assert seen["plot"] == plot


def test_cli_format_disagreeing_with_the_suffix_is_an_error():
  result = CliRunner().invoke(main, ["demo", "--plot", "f.png", "--format",
                                     "pdf"])
  assert result.exit_code == 2 and "make them agree" in result.output
  assert "pdf|svg|png" in CliRunner().invoke(main, ["demo", "--help"]).output


def test_record_steps_are_logarithmic_and_end_at_the_last_step():
  t = demo.record_steps(1000)
  assert t[0] == 0 and t[1] == 1 and t[-1] == 1000
  assert np.all(np.diff(t) > 0) and 20 <= t.size <= 41
