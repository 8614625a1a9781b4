"""End-to-end timing shared by the research-pattern benchmarks' scripts."""

import statistics
import time


def cold_and_warm(fn, repeats: int):
  """Times `fn()` `1 + repeats` times in this process; returns
  `(last result, summary)`, the summary naming the first (cold) time, the
  median of the others (warm) and every time."""
  times, out = [], None
  for _ in range(1 + repeats):
    start = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - start)
  warm = statistics.median(times[1:]) if repeats else float("nan")
  return out, (f"first (cold) {times[0]:.2f} s, warm median of {repeats} "
               f"{warm:.2f} s  [{', '.join(f'{t:.2f}' for t in times)}]")
