"""The `ntcore` command line: `ntcore plugins`, `ntcore list-layers`, and
whatever subcommands plugins add through their `register_commands(cli)` hook.

This is the only module that turns `NtcoreError`s into
`click.ClickException`s. Plugin load failures never stop the CLI: they are
collected (`Registry.errors()`) and printed as warnings on stderr.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import sys
import warnings
import weakref
from typing import Optional

import click

from ntcore import errors, registry
from ntcore.registry import providers
from ntcore.registry.manager import LoadError, call_one

_CLASH_LINE = "Warning: " + " ".join(
    line.strip() for line in errors.CLASH.splitlines())


def plugin_version(plugin: str) -> str:
  """The installed version of the distribution named like `plugin`, or ""."""
  try:
    return importlib.metadata.version(plugin)
  except (importlib.metadata.PackageNotFoundError, ValueError):
    return ""


def _registry(specs: bool = True) -> registry.Registry:
  """The global registry, with every spec collected unless `specs=False`.

  Load warnings are silenced here because each one is also recorded as a
  `LoadError`, which the commands print once, after their output. Listing the
  commands needs only the loaded plugins, not their specs (collecting those
  imports the layers, and with them jax).
  """
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", registry.PluginLoadWarning)
    reg = registry.get_registry()
    if specs:
      # Building each SpecRegistry calls its hook and records hook failures.
      _ = (reg.layers, reg.estimators, reg.ode_solvers)
  return reg


@dataclasses.dataclass
class _PluginCommands:
  commands: dict[str, click.Command]
  errors: list[LoadError]


_COMMANDS: "weakref.WeakKeyDictionary[registry.Registry, _PluginCommands]" = (
    weakref.WeakKeyDictionary())


def _plugin_commands(reg: registry.Registry, builtin: set[str]
                     ) -> _PluginCommands:
  """Calls each plugin's `register_commands` on its own scratch group.

  A plugin that raises, or a command name that is built in or offered by two
  plugins, is skipped and recorded as a `LoadError`; the CLI still runs.
  Cached per registry, so a test that swaps the global registry sees its own.
  """
  if reg in _COMMANDS:
    return _COMMANDS[reg]
  offered: dict[str, list[tuple[str, click.Command]]] = {}
  errs = []
  impls = reg.pm.hook.register_commands.get_hookimpls()
  for impl in sorted(impls, key=lambda i: i.plugin_name):
    scratch = click.Group(name="ntcore")
    try:
      call_one(reg.pm, "register_commands", impl, cli=scratch)
    except Exception as e:  # pylint: disable=broad-except
      errs.append(LoadError(impl.plugin_name, plugin_version(impl.plugin_name),
                            f"register_commands: {type(e).__name__}: {e}"))
      continue
    for name, command in scratch.commands.items():
      offered.setdefault(name, []).append((impl.plugin_name, command))
  commands = {}
  for name, owners in sorted(offered.items()):
    plugins = [plugin for plugin, _ in owners]
    if name in builtin:
      why = f"command {name!r} is built in; the plugin's one is skipped."
    elif len(owners) > 1:
      why = (f"command {name!r} is offered by {' and '.join(plugins)}; "
             "neither is added. Load only one with NTCORE_LOAD_PLUGINS.")
    else:
      commands[name] = owners[0][1]
      continue
    errs.extend(LoadError(p, plugin_version(p), f"register_commands: {why}")
                for p in plugins)
  result = _COMMANDS[reg] = _PluginCommands(commands, errs)
  return result


class _Ntcore(click.Group):
  """A group that adds plugin commands and turns NtcoreErrors into messages."""

  def _plugin(self) -> _PluginCommands:
    """Plugin commands; their problems are printed the first time."""
    reg = _registry(specs=False)
    fresh = reg not in _COMMANDS
    found = _plugin_commands(reg, set(self.commands))
    if fresh:
      for err in found.errors:
        click.echo(_error_line(err), err=True)
    return found

  def list_commands(self, ctx):
    return sorted(set(self.commands) | set(self._plugin().commands))

  def get_command(self, ctx, cmd_name):
    if cmd_name in self.commands:
      return self.commands[cmd_name]
    return self._plugin().commands.get(cmd_name)

  def invoke(self, ctx):
    try:
      return super().invoke(ctx)
    except errors.NtcoreError as e:
      raise click.ClickException(one_line(str(e))) from e
    except OSError as e:
      raise click.ClickException(os_error_line(e)) from e


def one_line(text: str) -> str:
  """A message on one line: its lines joined by spaces."""
  return " ".join(part.strip() for part in text.splitlines() if part.strip())


def os_error_line(e: OSError, what: str = "") -> str:
  """`cannot write k.npz: No space left on device (errno 28)`."""
  where = f" {e.filename}" if e.filename else ""
  reason = e.strerror or str(e)
  code = f" (errno {e.errno})" if e.errno else ""
  return one_line(f"{what or 'file system error on'}{where}: {reason}{code}")


@click.group(cls=_Ntcore)
# The distribution is `ntcore-jax`; `ntcore` on PyPI is an unrelated project.
@click.version_option(package_name=providers.CORE_DISTRIBUTION,
                      prog_name="ntcore")
def main():
  """ntcore: infinite-width neural networks; layers come from plugins."""


def _error_line(err: LoadError) -> str:
  version = f" {err.version}" if err.version else ""
  return f"Warning: plugin {err.plugin}{version} failed: {err.error}"


def _table(rows: list[list[str]], header: list[str]) -> str:
  widths = [max(len(str(r[i])) for r in [header] + rows)
            for i in range(len(header))]
  lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
           for r in [header] + rows]
  return "\n".join(lines)


def _all_errors(reg: registry.Registry) -> list[LoadError]:
  return reg.errors() + _plugin_commands(reg, set(main.commands)).errors


@main.command("list-layers")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of {name, plugin, kind, doc, qualified}.")
def list_layers(as_json: bool):
  """The layers the loaded plugins register (stax names)."""
  reg = _registry()
  specs = reg.layers.specs()
  clashes = reg.layers.clashes()
  if as_json:
    click.echo(json.dumps([
        {"name": s.name, "plugin": s.plugin, "kind": s.kernel, "doc": s.doc,
         "qualified": f"{s.plugin}:{s.name}", "clash": s.name in clashes}
        for s in specs], indent=2))
  elif specs:
    click.echo(_table([[s.name, s.plugin, s.kernel, s.doc] for s in specs],
                      ["layer", "plugin", "kind", "doc"]))
  else:
    click.echo("No layers: no layer plugin is loaded "
               f"({registry.LOAD_ENV}={_env_value()}).")
  for name in sorted(clashes):
    plugins = clashes[name]
    click.echo(_CLASH_LINE.format(
        name=f"stax.{name}", plugins=" and ".join(plugins),
        qualified=", ".join(f"'{p}:{name}'" for p in plugins)), err=True)
  for err in reg.errors():
    click.echo(_error_line(err), err=True)


def _env_value() -> str:
  value: Optional[str] = os.environ.get(registry.LOAD_ENV)
  return "unset" if value is None else repr(value)


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of {name, version, hooks, errors}.")
def plugins(as_json: bool):
  """The installed plugins: name, version, hooks implemented, load errors."""
  reg = _registry()
  errs = _all_errors(reg)
  rows = {}
  for name, plugin in sorted(reg.pm.list_name_plugin()):
    if plugin is None:
      continue  # blocked
    hooks = sorted(c.name for c in reg.pm.get_hookcallers(plugin) or [])
    rows[name] = {"name": name, "version": plugin_version(name),
                  "hooks": hooks, "loaded": True, "errors": []}
  for err in errs:
    row = rows.setdefault(err.plugin, {
        "name": err.plugin, "version": err.version, "hooks": [],
        "loaded": False, "errors": []})
    row["errors"].append(err.error)
  result = [rows[n] for n in sorted(rows)]
  if as_json:
    click.echo(json.dumps(result, indent=2))
    return
  if not result:
    click.echo(f"No plugins loaded ({registry.LOAD_ENV}={_env_value()}).")
    return
  click.echo(_table(
      [[r["name"], r["version"], ", ".join(r["hooks"]) or "-",
        "ok" if not r["errors"] else
        ("failed: " if not r["loaded"] else "error: ") + "; ".join(r["errors"])]
       for r in result],
      ["plugin", "version", "hooks", "status"]))


@main.command("demo")
@click.option("--float32", "single", is_flag=True,
              help="Compute the kernels in float32 instead of float64.")
@click.option("--width", default=256, show_default=True,
              help="Hidden width of the finite networks (the paper: 2048).")
@click.option("--members", default=64, show_default=True,
              help="Number of finite networks in the ensemble.")
@click.option("--steps", default=1000, show_default=True,
              help="Full-batch gradient descent steps.")
@click.option("--seed", default=0, show_default=True,
              help="Seed of the data and the initializations.")
@click.option("--plot", "plot_path", default=None,
              help="Where to write the figure  [default: ntcore-demo.FORMAT]")
@click.option("--format", "plot_format", type=click.Choice(
    ["png", "pdf", "svg"]), default=None,
              help="Format of the figure: png, pdf or svg  [default: the "
                   "suffix of --plot, else png]")
@click.option("--no-plot", is_flag=True, help="Write no figure.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr while the ensemble trains; drawn "
                   "only on a terminal.")
def demo(single: bool, width: int, members: int, steps: int, seed: int,
         plot_path: Optional[str], plot_format: Optional[str], no_plot: bool,
         progress: bool):
  """The NT paper's section 2.1 experiment: finite ensemble vs infinite width.

  Trains an ensemble of finite Erf networks on sin data and compares its
  train/test loss, mean and spread with the closed form of the infinitely
  wide network over training time; writes the paper's Figure 1 (loss
  curves on log axes, step 0 marked; outputs with both 2-std bands) as PNG,
  PDF or SVG (--format pdf|svg|png; needs the plot extra:
  pip install -e ".[plot]").
  """
  # pylint: disable=import-outside-toplevel
  import jax
  from ntcore import _demo_ensemble
  from ntcore import demo as demo_module
  # The CLI is an entry point, so it may set JAX's global precision: the
  # kernels' closed forms cancel digits at long times (x64 keeps them).
  plot = _plot_path(plot_path, plot_format)
  jax.config.update("jax_enable_x64", not single)
  bar = (_demo_ensemble.progress_bar(sys.stderr)
         if progress else None)
  demo_module.run(click.echo, width=width, n_members=members, steps=steps,
                  seed=seed, plot=None if no_plot else plot,
                  progress=bar)


def _plot_path(path: Optional[str], fmt: Optional[str]) -> str:
  """The figure's file: `--plot` with the suffix `--format` asks for."""
  if path is None:
    return f"ntcore-demo.{fmt or 'png'}"
  suffix = os.path.splitext(path)[1].lower().lstrip(".")
  if fmt is None:
    if suffix not in ("png", "pdf", "svg"):
      raise click.BadParameter(
          f"{path!r} has no .png, .pdf or .svg suffix; add one, or pass "
          f"--format.", param_hint="--plot")
    return path
  if not suffix:
    return f"{path}.{fmt}"
  if suffix != fmt:
    raise click.BadParameter(
        f"{path!r} ends in .{suffix} but --format is {fmt}; make them agree.",
        param_hint="--plot")
  return path


@main.command("kernel")
@click.argument("model")
@click.argument("x1", type=click.Path(dir_okay=False))
@click.argument("x2", required=False, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(),
              help="The kernel file to write (.npz: nngp, ntk, ntcore_info).")
@click.option("--batch-size", default=0, show_default=True, type=int,
              help="Examples per block side (0: one block per device).")
@click.option("--resume", is_flag=True,
              help="Continue a killed run from the blocks in OUT.blocks/.")
@click.option("--device-count", default=-1, show_default=True, type=int,
              help="-1: all devices; 0: the default device; k: k devices.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr; drawn only on a terminal.")
@click.option("--float32", "single", is_flag=True,
              help="Compute in float32 instead of float64.")
@click.option("--force", is_flag=True,
              help="Overwrite OUT even if it is not a kernel file ntcore "
                   "wrote.")
@click.option("--executor", default="local", show_default=True,
              help="Who computes the blocks: local (this process), or an "
                   "executor a plugin registers (dask, from nt-dask).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="The cluster's scheduler (tcp://host:8786) for a cluster "
                   "executor; without it, a local cluster is started.")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Worker processes of the local cluster started when no "
                   "--scheduler is given (default: one per CPU core).")
def kernel(model: str, x1: str, x2: Optional[str], out: str, batch_size: int,
           resume: bool, device_count: int, progress: bool, single: bool,
           force: bool, executor: str, scheduler: Optional[str],
           workers: Optional[int]):
  """Computes the NNGP and NTK of MODEL on X1 (and X2) into --out.

  MODEL is module:function (importable from the current directory or
  PYTHONPATH), a function returning a stax triple; X1, X2 are .npy files.
  Finished blocks are kept in OUT.blocks/ until OUT is written, so a run
  that is killed, interrupted (Ctrl-C, SIGTERM) or stopped by a full disk
  continues with --resume. Read OUT with ntcore.load_kernel(OUT) or
  ntcore kernel-info OUT. With --executor dask (the nt-dask plugin), each
  block is a task on a Dask cluster whose workers write into OUT.blocks/,
  which must then be on a file system they share.
  """
  import jax  # pylint: disable=import-outside-toplevel
  from ntcore.parallel import _command  # pylint: disable=import-outside-toplevel
  jax.config.update("jax_enable_x64", not single)
  if batch_size < 0:
    raise click.BadParameter("must be >= 0", param_hint="--batch-size")
  cluster = dict(executor=executor, scheduler=scheduler, workers=workers)
  again = _command.resume_command(model, x1, x2, out, batch_size,
                                  device_count, single, **cluster)
  try:
    with _terminate_as_interrupt():
      counts = _command.compute(model, x1, x2, out, batch_size, resume,
                                device_count, progress, force, **cluster)
  except (_Interrupted, KeyboardInterrupt) as e:
    number, name = getattr(e, "signal_number", 2), getattr(
        e, "signal_name", "SIGINT")
    click.echo(f"\nntcore kernel: stopped by {name}; "
               f"{_command.kept_line(out)}. Continue with:\n  {again}",
               err=True)
    raise SystemExit(128 + number) from None
  except OSError as e:
    if not e.filename:  # a failed write() names no file: it was one of ours
      e.filename = out
    raise click.ClickException(
        f"{os_error_line(e, 'cannot write')}; {_command.kept_line(out)}. "
        f"Free space (or fix the permission), then continue with: {again}"
    ) from e
  shapes = ", ".join(f"{k} {tuple(v)}" for k, v in counts["shapes"].items())
  click.echo(f"ntcore kernel: {counts['total']} blocks ({counts['loaded']} "
             f"loaded, {counts['computed']} computed); wrote {shapes} to "
             f"{out}", err=True)


class _Interrupted(BaseException):
  """SIGINT or SIGTERM during `ntcore kernel` (a BaseException, like
  KeyboardInterrupt, so that no `except Exception` swallows it)."""

  def __init__(self, signal_number: int):
    import signal  # pylint: disable=import-outside-toplevel
    super().__init__(signal_number)
    self.signal_number = signal_number
    self.signal_name = signal.Signals(signal_number).name


class _terminate_as_interrupt:  # pylint: disable=invalid-name
  """Turns SIGINT (Ctrl-C) and SIGTERM into `_Interrupted` while it lasts,
  so both stop the run the same way: blocks written so far stay whole."""

  def __enter__(self):
    import signal  # pylint: disable=import-outside-toplevel
    import threading  # pylint: disable=import-outside-toplevel
    self._saved = {}
    if threading.current_thread() is not threading.main_thread():
      return self

    def handler(number, frame):
      raise _Interrupted(number)

    for sig in (signal.SIGINT, signal.SIGTERM):
      self._saved[sig] = signal.signal(sig, handler)
    return self

  def __exit__(self, *exc):
    import signal  # pylint: disable=import-outside-toplevel
    for sig, old in self._saved.items():
      signal.signal(sig, old)
    return False


@main.command("kernel-info")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print the file's ntcore_info as JSON.")
def kernel_info(path: str, as_json: bool):
  """What a kernel file written by ntcore kernel holds, and how it was made.

  Reads PATH without pickle: its arrays' shapes and dtypes, the model, the
  inputs (shape, dtype, sha256), the ntcore version and the blocks'
  provenance (block size, store fingerprint, blocks computed and loaded).
  """
  from ntcore import kernel_file  # pylint: disable=import-outside-toplevel
  k = kernel_file.load_kernel(path)
  if as_json:
    click.echo(json.dumps(k.info, indent=2, sort_keys=True))
    return
  for name, a in sorted(k.arrays.items()):
    click.echo(f"{name}: {a.dtype} {tuple(a.shape)}")
  if not k.info:
    click.echo("(no ntcore_info: this .npz was not written by ntcore kernel)")
    return
  info = k.info
  click.echo(f"model: {info.get('model')}")
  for key, x in sorted((info.get("inputs") or {}).items()):
    if x:
      click.echo(f"{key}: {x['path']} {x['dtype']} {tuple(x['shape'])} "
                 f"sha256 {x['sha256'][:16]}")
  blocks = info.get("blocks") or {}
  click.echo(f"blocks: {blocks.get('total')} of {blocks.get('block_shape')} "
             f"({blocks.get('computed')} computed, {blocks.get('loaded')} "
             f"loaded), store {str(blocks.get('store_fingerprint'))[:16]}")
  click.echo(f"ntcore {info.get('ntcore_version')}, written "
             f"{info.get('created')}")
