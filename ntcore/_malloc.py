"""glibc malloc options ntcore sets at import: large blocks go back at once.

glibc serves a block of at least `M_MMAP_THRESHOLD` bytes (128 KiB at
start) with its own `mmap`, which `free` returns to the system. But the
threshold is dynamic: freeing such a block raises it to that block's size
(up to 32 MiB), so from then on blocks of that size come from the heaps,
one per thread ("arenas"), where freed memory is kept for reuse and
fragments. jaxlib 0.10's CPU runtime allocates and frees buffers of tens
of MiB from several threads, so kernel blocks of one call stay resident
beside those of the next: computing the NNGP and NTK of Myrtle-5 in
16 x 16 blocks (`nt.batch`, whose point is memory bounded by the block)
raised the peak by 129 MB above the runtime's baseline, 78 MB with the
threshold fixed (NT 0.6.5: 60 MB); the FC kernel of 2000 inputs (16 MB
arrays) by 176 instead of 137 MB (NT: 385 MB).

`configure()` fixes the threshold at `MMAP_THRESHOLD` (12 MiB), which turns
glibc's dynamic adjustment off, and the heap's trim threshold at 64 MiB
(the largest the dynamic rule would reach). Each block of 12 MiB or more
then costs its own `mmap` and fresh pages; below that nothing changes.
Measured with the side-by-side harness (`docs/memory.md`), steady times
moved within noise except for the batched Myrtle-5, whose 28 MiB of
temporaries per block are now mapped anew each block: 0.114 to 0.186 s
(NT: 2.8-4.8 s). A threshold of 1 or 4 MiB saved a little more memory on the
empirical NTKs but made FC, conv and the empirical NTKs 8-40% slower.

And once JAX is imported (`trim_after_compiles`, called by `ntcore.kernel`),
each XLA compilation ends with `malloc_trim(0)`: compiling leaves many
small freed blocks in the heaps (LLVM's and XLA's passes), which glibc keeps
under the trim threshold; given back, they no longer sit under the
arrays of the run that follows. Measured with the harness: 9 MB less for
the batched Myrtle-5 (two programs), 15 MB for the Monte Carlo NTK, 8 MB for
Myrtle-5; `malloc_trim` takes about a millisecond against compilations of
0.05 s and more, and steady times did not move.

Both are done only
  * on glibc (elsewhere `mallopt` is absent or means something else),
  * when none of glibc's own malloc settings is in the environment
    (`MALLOC_*_` variables or `GLIBC_TUNABLES=glibc.malloc.*`: the user's
    choice wins), and
  * when `NTCORE_MALLOC` is not `0` (the opt-out).
It applies to the whole process, from the moment ntcore is imported.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Mapping, Optional

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 12 << 20
TRIM_THRESHOLD = 64 << 20

# jax.monitoring's event at the end of each XLA compilation.
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"

_configured: Optional[ctypes.CDLL] = None  # glibc, once `configure` ran
_trimming = False

# glibc's environment settings of the same options: any of them set means
# the user has chosen the allocator's behaviour.
_GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                    "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX",
                    "MALLOC_ARENA_TEST")


def glibc() -> Optional[ctypes.CDLL]:
  """This process's C library, if it is glibc (None otherwise)."""
  if not sys.platform.startswith("linux"):
    return None
  try:
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version  # pylint: disable=pointless-statement
    libc.mallopt  # pylint: disable=pointless-statement
  except (OSError, AttributeError):
    return None
  return libc


def users_choice(environ: Mapping[str, str]) -> bool:
  """Whether the environment sets glibc's malloc options itself."""
  return (any(name in environ for name in _GLIBC_VARIABLES) or
          "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""))


def configure(environ: Mapping[str, str] = os.environ) -> bool:
  """Fixes glibc's mmap and trim thresholds where the rules above allow it;
  returns whether it did."""
  if environ.get("NTCORE_MALLOC", "1").strip() == "0" or users_choice(
      environ):
    return False
  libc = glibc()
  if libc is None:
    return False
  global _configured
  if (libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and
      libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
    _configured = libc
  return _configured is not None


def trim_after_compiles() -> bool:
  """Ends each XLA compilation with `malloc_trim(0)` (once `configure` has
  set the thresholds); returns whether the listener is registered. Imports
  JAX, which is why `import ntcore` does not call it."""
  global _trimming
  if _trimming or _configured is None:
    return _trimming
  import jax.monitoring  # pylint: disable=import-outside-toplevel
  trim = _configured.malloc_trim

  def listener(event: str, duration_secs: float, **kwargs) -> None:
    del duration_secs, kwargs
    if event == BACKEND_COMPILE_EVENT:
      trim(0)

  jax.monitoring.register_event_duration_secs_listener(listener)
  _trimming = True
  return True
