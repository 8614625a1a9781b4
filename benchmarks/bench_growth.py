"""Cost growth: time and memory of three analytic kernels as the input grows, beside NT 0.6.5.

Three workloads, each `jax.jit(kernel_fn, static_argnames='get')` called with
`get=('nngp', 'ntk')` in float32 (JAX defaults), the network built with the
`stax` of the module being measured (`neural_tangents` or `ntcore`, the same
code for both):

  fc         Dense(512, W_std=1.5, b_std=0.05)-Relu x10 + Dense(1);
             x of shape (N, 64), N = 500, 1000, 2000, 4000, 8000.
  myrtle     Myrtle-5 (width 64, AvgPool, GlobalAvgPool, full pixel-pixel
             covariance); x of shape (N, 8, 8, 3), N = 8, 16, 32, 64, 128.
  attention  Dense(64), two softmax GlobalSelfAttention layers (4 heads) with
             Relu, GlobalAvgPool, Dense(1); 32 inputs of shape (L, 32),
             sequence length L = 8, 16, 32, 64.

Every (workload, size, module) run is a fresh process (this script re-invoked
with `--worker`): `neural_tangents` under NT's interpreter, `ntcore` under the
interpreter running this script. Per module, sizes run smallest first; once a
run takes longer than `--budget` seconds, or fails, times out or goes over
`--max-rss-mb`, that module's larger sizes of the workload are skipped (and
recorded as skipped). The two modules alternate at each size, so a change in
the machine's load hits both alike.

Per run the worker reports
  compile_first_s   the first call, tracing and compilation included;
  steady_median_s   the median of 3 further calls, each ending in
                    `jax.block_until_ready`;
  mem_above_base_mb the peak resident memory above the runtime's baseline.

Memory above baseline: after importing the module and running one tiny op (a
Dense(1) NNGP of 2x3 inputs) the worker reads `VmRSS` from /proc/self/status
(the baseline), resets the kernel's high-water mark (writing "5" to
/proc/self/clear_refs), builds and runs the workload, and reports
`VmHWM - baseline`. The two modules run on different JAX releases (NT 0.6.5
needs jax 0.4.23), whose runtimes alone differ by tens of MB after import;
a raw peak RSS would charge that difference to the kernel code. Above the
baseline, the number counts what the workload itself costs: its inputs, the
compiled program and XLA's buffers and temporaries.

The growth exponent of a curve is the least-squares slope of log(value)
against log(size) over the upper half of the sizes that module completed
(at least two points): for the N x N covariances of fc and myrtle, time and
memory both tend to N^2 once N is large enough to hide fixed costs.

Run (about 10-15 minutes on 2 cores for both modules and all sizes):

  python benchmarks/bench_growth.py --json-out growth.jsonl \\
      --md-out docs/figures/growth.md --figure docs/figures/growth.svg
  python benchmarks/bench_growth.py --modules ntcore -w fc --quick
  python benchmarks/bench_growth.py --replot growth.jsonl --figure f.svg

NT's interpreter: `--nt-python`, else $NTCORE_BENCH_NT_PYTHON, else
`.bench/venv-nt/bin/python` (in the current directory or the repository root)
if it exists, else /tmp/venv-nt/bin/python. Output: one JSON line per run
(`--json-out`, appended), a markdown table on stdout (`--md-out` writes it
with a header naming the date, `nproc` and the load average at start and
end) and a log-log figure (`--figure`, matplotlib); `--replot` redraws the
table and figure from a JSON-lines file without running anything.
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODULES = ('neural_tangents', 'ntcore')
LABELS = {'neural_tangents': 'NT 0.6.5', 'ntcore': 'ntcore'}

# ---------------------------------------------------------------------------
# Workloads: builder(stax, jax, jnp, np, size) -> zero-argument call.


def _x(np, shape, seed=0):
  return np.random.RandomState(seed).randn(*shape).astype(np.float32)


def _jit_kernel(jax, layer):
  return jax.jit(layer[2], static_argnames='get')


def w_fc(stax, jax, jnp, np, n):
  layers = []
  for _ in range(10):
    layers += [stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu()]
  layers += [stax.Dense(1, W_std=1.5, b_std=0.05)]
  kf = _jit_kernel(jax, stax.serial(*layers))
  x = jnp.asarray(_x(np, (n, 64)))
  return lambda: kf(x, None, ('nngp', 'ntk'))


def w_myrtle(stax, jax, jnp, np, n):
  def conv():
    return stax.Conv(64, (3, 3), W_std=2 ** 0.5, b_std=0.0, padding='SAME')
  layers = [conv(), stax.Relu(), conv(), stax.Relu(),
            stax.AvgPool((2, 2), strides=(2, 2)),
            conv(), stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)),
            conv(), stax.Relu(),
            stax.GlobalAvgPool(), stax.Dense(10, W_std=2 ** 0.5, b_std=0.0)]
  kf = _jit_kernel(jax, stax.serial(*layers))
  x = jnp.asarray(_x(np, (n, 8, 8, 3)))
  return lambda: kf(x, None, ('nngp', 'ntk'))


def w_attention(stax, jax, jnp, np, length):
  def attention(**kw):
    return stax.GlobalSelfAttention(
        n_chan_out=64, n_chan_key=64, n_chan_val=64, n_heads=4,
        attention_mechanism='SOFTMAX', **kw)
  kf = _jit_kernel(jax, stax.serial(
      stax.Dense(64, W_std=1.0, b_std=0.0), attention(linear_scaling=True),
      stax.Relu(), stax.Dense(64, W_std=1.5, b_std=0.05), attention(),
      stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1, W_std=1.5, b_std=0.05)))
  x = jnp.asarray(_x(np, (32, length, 32)))
  return lambda: kf(x, None, ('nngp', 'ntk'))


# name -> (builder, sizes, size label, description)
WORKLOADS = {
    'fc': (w_fc, (500, 1000, 2000, 4000, 8000), 'N',
           'FC Dense(512)-Relu x10 + Dense(1), x (N, 64)'),
    'myrtle': (w_myrtle, (8, 16, 32, 64, 128), 'N',
               'Myrtle-5 width 64, x (N, 8, 8, 3), full pixel-pixel covariance'),
    'attention': (w_attention, (8, 16, 32, 64), 'L',
                  '2x GlobalSelfAttention(SOFTMAX, 4 heads), x (32, L, 32)'),
}

# ---------------------------------------------------------------------------
# Worker: one run in this (fresh) process.


def _status_kb(field):
  with open('/proc/self/status') as fh:
    for line in fh:
      if line.startswith(field + ':'):
        return int(line.split()[1])
  raise RuntimeError(f'/proc/self/status has no {field}')


def worker(args):
  import importlib
  import warnings
  warnings.filterwarnings('ignore')
  import numpy as np
  import jax
  import jax.numpy as jnp
  rec = dict(workload=args.worker, size=args.size, module=args.module,
             jax=jax.__version__, status='ok')
  try:
    mod = importlib.import_module(args.module)
    rec['version'] = getattr(mod, '__version__', None)
    stax = getattr(mod, 'stax', None) or importlib.import_module(
        args.module + '.stax')
    _, _, tiny = stax.serial(stax.Dense(1))
    jax.block_until_ready(tiny(jnp.asarray(_x(np, (2, 3))), None, 'nngp'))
    base_kb = _status_kb('VmRSS')
    try:
      with open('/proc/self/clear_refs', 'w') as fh:
        fh.write('5')
      rec['hwm_reset'] = True
    except OSError:  # then VmHWM includes the import peak: say so
      rec['hwm_reset'] = False
    t0 = time.perf_counter()
    call = WORKLOADS[args.worker][0](stax, jax, jnp, np, args.size)
    rec['build_s'] = round(time.perf_counter() - t0, 4)
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    rec['compile_first_s'] = round(time.perf_counter() - t0, 4)
    times = []
    for _ in range(args.repeats):
      t0 = time.perf_counter()
      jax.block_until_ready(call())
      times.append(time.perf_counter() - t0)
    rec['steady_median_s'] = round(statistics.median(times), 4)
    rec['steady_all_s'] = [round(t, 4) for t in times]
    rec['baseline_rss_mb'] = round(base_kb / 1024, 1)
    rec['hwm_mb'] = round(_status_kb('VmHWM') / 1024, 1)
    rec['mem_above_base_mb'] = round((_status_kb('VmHWM') - base_kb) / 1024, 1)
  except Exception as e:  # pylint: disable=broad-except
    s = str(e).strip()
    rec['status'] = 'error'
    rec['error'] = f'{type(e).__name__}: {s.splitlines()[0][:200] if s else ""}'
  print('RESULT ' + json.dumps(rec), flush=True)
  return 0

# ---------------------------------------------------------------------------
# Parent: subprocess per run, skipping rules, table, exponents, figure.


def _child_rss_mb(pid):
  try:
    with open(f'/proc/{pid}/status') as fh:
      for line in fh:
        if line.startswith('VmRSS:'):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  return 0.0


def run_one(python, module, workload, size, args):
  """Runs one (workload, size, module) in a fresh child; returns its record."""
  cmd = [python, os.path.abspath(__file__), '--worker', workload, '--size',
         str(size), '--module', module, '--repeats', str(args.repeats)]
  t0 = time.time()
  why = None
  with tempfile.TemporaryFile('w+') as out:
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=HERE)
    while p.poll() is None:
      if time.time() - t0 > args.timeout:
        why = f'timeout: killed after {args.timeout} s'
      elif _child_rss_mb(p.pid) > args.max_rss_mb:
        why = f'oom: resident memory above --max-rss-mb={args.max_rss_mb}'
      if why:
        p.kill()
        p.wait()
        break
      time.sleep(0.05)
    out.seek(0)
    text = out.read()
  rec = None
  for line in text.splitlines():
    if line.startswith('RESULT '):
      rec = json.loads(line[len('RESULT '):])
  if rec is None:
    tail = [l for l in text.strip().splitlines() if l.strip()][-1:] or ['']
    rec = dict(workload=workload, size=size, module=module,
               status=why.split(':')[0] if why else 'crash',
               error=why or f'exit {p.returncode}: {tail[0][:200]}')
  rec['wall_s'] = round(time.time() - t0, 2)
  rec['python'] = python
  return rec


def nt_python(args):
  """NT 0.6.5's interpreter, by the order the module docstring states."""
  cands = [args.nt_python, os.environ.get('NTCORE_BENCH_NT_PYTHON'),
           os.path.join(os.getcwd(), '.bench', 'venv-nt', 'bin', 'python'),
           os.path.join(ROOT, '.bench', 'venv-nt', 'bin', 'python'),
           '/tmp/venv-nt/bin/python']
  for i, c in enumerate(cands):
    if c and (i < 2 or os.path.exists(c)):
      if not os.path.exists(c):
        sys.exit(f'no NT 0.6.5 interpreter at {c}: point --nt-python (or '
                 'NTCORE_BENCH_NT_PYTHON) at a Python with neural-tangents '
                 '0.6.5 installed, or drop neural_tangents from --modules')
      return c
  sys.exit('no NT 0.6.5 interpreter found (tried .bench/venv-nt/bin/python and '
           '/tmp/venv-nt/bin/python): pass --nt-python, or run with '
           '--modules ntcore')


def exponent(recs, key):
  """Slope of log(key) against log(size) over the upper half of the ok sizes."""
  pts = sorted((r['size'], r[key]) for r in recs
               if r.get('status') == 'ok' and r.get(key) and r[key] > 0)
  if len(pts) < 2:
    return None
  pts = pts[max(0, min(len(pts) // 2, len(pts) - 2)):]
  xs = [math.log(s) for s, _ in pts]
  ys = [math.log(v) for _, v in pts]
  mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
  sxx = sum((x - mx) ** 2 for x in xs)
  return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def fmt(v, nd=3):
  if v is None:
    return '-'
  return f'{v:.{nd}f}' if isinstance(v, float) else str(v)


def tables(results, wls, mods):
  """Markdown: one row per (workload, size), then one row of exponents per workload."""
  get = lambda w, s, m: results.get((w, s, m), {})
  lines = ['| workload | size | ' + ' | '.join(
      f'{LABELS[m]} first (s)' for m in mods) + ' | ' + ' | '.join(
          f'{LABELS[m]} steady (s)' for m in mods) + ' | ' + (
              'steady ratio ntcore/NT | ' if len(mods) == 2 else '') + ' | '.join(
                  f'{LABELS[m]} mem above base (MB)' for m in mods) + ' | status |']
  ncol = 2 + 3 * len(mods) + (1 if len(mods) == 2 else 0) + 1
  lines.append('|---|---|' + '---:|' * (ncol - 3) + '---|')
  for w in wls:
    label = WORKLOADS[w][2]
    for s in sorted({s for (w2, s, _) in results if w2 == w}):
      recs = [get(w, s, m) for m in mods]
      if not any(recs):
        continue
      row = [w, f'{label}={s}']
      row += [fmt(r.get('compile_first_s'), 2) for r in recs]
      row += [fmt(r.get('steady_median_s'), 3) for r in recs]
      if len(mods) == 2:
        a, b = (r.get('steady_median_s') for r in recs)
        row.append(fmt(b / a, 2) if a and b else '-')
      row += [fmt(r.get('mem_above_base_mb'), 0) for r in recs]
      sts = [f'{LABELS[m]}: {r.get("status", "-")}' + (
          f' ({r["error"]})' if r.get('error') else '')
             for m, r in zip(mods, recs) if r.get('status') != 'ok']
      row.append('; '.join(sts) or 'ok')
      lines.append('| ' + ' | '.join(row) + ' |')
  lines += ['', '| workload | ' + ' | '.join(
      f'{LABELS[m]} time exponent' for m in mods) + ' | ' + ' | '.join(
          f'{LABELS[m]} memory exponent' for m in mods) + ' |',
            '|---|' + '---:|' * (2 * len(mods))]
  expo = {}
  for w in wls:
    row = [w]
    for key in ('steady_median_s', 'mem_above_base_mb'):
      for m in mods:
        e = exponent([r for (w2, _, m2), r in results.items()
                      if w2 == w and m2 == m], key)
        expo[(w, m, key)] = e
        row.append(fmt(e, 2))
    lines.append('| ' + ' | '.join(row) + ' |')
  return '\n'.join(lines), expo


def sizes_of(w, quick=False, sizes=None):
  if sizes:
    return tuple(sizes)
  s = WORKLOADS[w][1]
  return s[:2] if quick else s


def plot(results, wls, mods, path, title):
  """One row per workload; steady time and memory above baseline, log-log."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from matplotlib import ticker  # pylint: disable=import-outside-toplevel
  plt.rcParams['svg.fonttype'] = 'none'
  plt.rcParams['svg.hashsalt'] = 'ntcore-growth'  # stable ids: small diffs
  fig, axes = plt.subplots(len(wls), 2, figsize=(9, 2.8 * len(wls) + 0.6),
                           squeeze=False)
  style = {'neural_tangents': dict(color='tab:gray', marker='s', ls='--'),
           'ntcore': dict(color='tab:blue', marker='o', ls='-')}
  for i, w in enumerate(wls):
    for j, (key, ylabel) in enumerate((('steady_median_s', 'steady time (s)'),
                                       ('mem_above_base_mb',
                                        'memory above baseline (MB)'))):
      ax = axes[i][j]
      for m in mods:
        pts = sorted((s, r[key]) for (w2, s, m2), r in results.items()
                     if w2 == w and m2 == m and r.get('status') == 'ok'
                     and r.get(key) and r[key] > 0)
        if pts:
          e = exponent([r for (w2, _, m2), r in results.items()
                        if w2 == w and m2 == m], key)
          lab = LABELS[m] + (f' (upper slope {e:.2f})' if e is not None else '')
          ax.plot([p[0] for p in pts], [p[1] for p in pts], label=lab,
                  **style[m])
      ax.set_xscale('log')
      ax.set_yscale('log')
      ax.set_xticks(sorted({s for (w2, s, _) in results if w2 == w}))
      ax.xaxis.set_major_formatter(ticker.FormatStrFormatter('%d'))
      ax.xaxis.set_minor_formatter(ticker.NullFormatter())
      ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
      ax.yaxis.set_major_formatter(ticker.FormatStrFormatter('%g'))
      ax.yaxis.set_minor_formatter(ticker.NullFormatter())
      ax.set_xlabel(f'{WORKLOADS[w][2]} ({w})')
      ax.set_ylabel(ylabel)
      ax.set_title(WORKLOADS[w][3], fontsize=8)
      ax.grid(True, which='major', alpha=0.3)
      if ax.lines:
        ax.legend(fontsize=8)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, metadata={'Date': None})
  plt.close(fig)


def loadavg():
  return ' '.join(f'{v:.2f}' for v in os.getloadavg())


def figure(args, results, wls, mods, day):
  """Draws `--figure` (unless `--no-figure`), titled with the machine and day."""
  if not args.no_figure and args.figure:
    plot(results, wls, mods, args.figure,
         f'Cost growth, {" vs ".join(LABELS[m] for m in mods)} - '
         f'{os.cpu_count()} CPUs, {day}')
    print(f'figure: {args.figure}', flush=True)
  return 0


def replot(args, wls, mods):
  """Tables and figure from a JSON-lines file that an earlier run wrote."""
  with open(args.replot) as fh:
    recs = [json.loads(l) for l in fh if l.strip()]
  results = {(r['workload'], r['size'], r['module']): r for r in recs
             if r['workload'] in wls and r['module'] in mods}
  mods = [m for m in mods if any(k[2] == m for k in results)]
  date = time.strftime('%Y-%m-%d', time.localtime(os.path.getmtime(args.replot)))
  table, _ = tables(results, wls, mods)
  print(table, flush=True)
  return figure(args, results, wls, mods, date)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('-w', '--workloads', default=','.join(WORKLOADS))
  ap.add_argument('--modules', default=','.join(MODULES),
                  help='comma list of neural_tangents, ntcore')
  ap.add_argument('--nt-python', default=None, help="NT 0.6.5's interpreter")
  ap.add_argument('--quick', action='store_true',
                  help='only the two smallest sizes of each workload')
  ap.add_argument('--sizes', default=None,
                  help='comma list of sizes to run instead of the defaults')
  ap.add_argument('--budget', type=float, default=120.0,
                  help='seconds; a run longer than this skips the larger sizes')
  ap.add_argument('--timeout', type=float, default=900.0,
                  help='seconds; a run is killed after this')
  ap.add_argument('--max-rss-mb', type=float, default=12000.0,
                  help='a run whose resident memory passes this is killed')
  ap.add_argument('--repeats', type=int, default=3, help='steady-state calls')
  ap.add_argument('--json-out', default=None, help='append JSON lines here')
  ap.add_argument('--md-out', default=None, help='write the tables here')
  ap.add_argument('--figure', default=os.path.join(ROOT, 'docs', 'figures',
                                                   'growth.svg'))
  ap.add_argument('--no-figure', action='store_true')
  ap.add_argument('--replot', default=None, metavar='JSONL',
                  help='run nothing: tabulate and plot the records of a '
                  'previous --json-out file')
  ap.add_argument('--worker', default=None, help=argparse.SUPPRESS)
  ap.add_argument('--size', type=int, default=None, help=argparse.SUPPRESS)
  ap.add_argument('--module', default=None, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.worker:
    return worker(args)
  wls = [w.strip() for w in args.workloads.split(',') if w.strip()]
  mods = [m.strip() for m in args.modules.split(',') if m.strip()]
  for w in wls:
    if w not in WORKLOADS:
      ap.error(f'unknown workload {w!r}: choose from {", ".join(WORKLOADS)}')
  for m in mods:
    if m not in MODULES:
      ap.error(f'unknown module {m!r}: choose from {", ".join(MODULES)}')
  mods = [m for m in MODULES if m in mods]  # NT first, always
  sizes = [int(s) for s in args.sizes.split(',')] if args.sizes else None
  if args.replot:
    return replot(args, wls, mods)
  pythons = {m: (nt_python(args) if m == 'neural_tangents' else sys.executable)
             for m in mods}
  start, load0 = time.time(), loadavg()
  date = time.strftime('%Y-%m-%d %H:%M')
  print(f'# bench_growth.py {date} nproc={os.cpu_count()} load average '
        f'(1, 5, 15 min) at start {load0}', flush=True)
  jf = open(args.json_out, 'a') if args.json_out else None
  results, stopped = {}, {}
  for w in wls:
    for s in sizes_of(w, args.quick, sizes):
      for m in mods:
        if (w, m) in stopped:
          rec = dict(workload=w, size=s, module=m, status='skipped',
                     error=stopped[(w, m)])
        else:
          rec = run_one(pythons[m], m, w, s, args)
          if rec['status'] != 'ok':
            stopped[(w, m)] = f'{rec["status"]} at {WORKLOADS[w][2]}={s}'
          elif rec['wall_s'] > args.budget:
            stopped[(w, m)] = (f'{WORKLOADS[w][2]}={s} took {rec["wall_s"]:.0f} s '
                               f'> --budget {args.budget:.0f} s')
        results[(w, s, m)] = rec
        line = json.dumps(rec)
        print('JSON ' + line, flush=True)
        if jf:
          jf.write(line + '\n')
          jf.flush()
  if jf:
    jf.close()
  wall, load1 = time.time() - start, loadavg()
  vers = '; '.join(
      f'{LABELS[m]}: jax {next((r["jax"] for (_, _, m2), r in results.items() if m2 == m and r.get("jax")), "?")}'
      for m in mods)
  header = (f'Measured {date} on a {platform.machine()} machine with nproc={os.cpu_count()} '
            f'(shared with other work), {vers}; float32, jit(kernel_fn), '
            f'nngp+ntk; steady = median of {args.repeats} calls after the '
            f'first; memory = peak RSS above the runtime baseline.\n'
            f'Load average (1, 5, 15 min): {load0} at start, {load1} at end; '
            f'full run {wall / 60:.1f} min.')
  table, _ = tables(results, wls, mods)
  print('\n' + header + '\n\n' + table, flush=True)
  if args.md_out:
    os.makedirs(os.path.dirname(os.path.abspath(args.md_out)), exist_ok=True)
    with open(args.md_out, 'w') as fh:
      fh.write('# Cost growth: ntcore vs NT 0.6.5\n\n' + header + '\n\n'
               'Produced by `benchmarks/bench_growth.py`; exponents are '
               'log-log slopes over the upper half of the sizes.\n\n'
               + table + '\n')
  return figure(args, results, wls, mods, date[:10])


if __name__ == '__main__':
  sys.exit(main())
