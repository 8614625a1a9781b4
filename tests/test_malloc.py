"""`import ntcore` sets glibc's malloc thresholds and trims after compiles
(`_malloc`).

The rules are checked on plain dicts; the effects in fresh interpreters, on
the allocator itself: a block of 16 MiB, freed twice, is given back to the
system each time under ntcore's setting and kept in the heap under glibc's
dynamic threshold; 48 MiB of freed small blocks are given back by the next
XLA compilation, and kept without ntcore's setting (the controls, so the
checks can fail).
"""

import os
import subprocess
import sys

import pytest

from ntcore import _malloc

pytestmark = pytest.mark.skipif(_malloc.glibc() is None,
                                reason="mallopt is glibc's")


@pytest.mark.parametrize("env", [
    {"NTCORE_MALLOC": "0"},
    {"MALLOC_ARENA_MAX": "2"},
    {"MALLOC_MMAP_THRESHOLD_": "65536"},
    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
])
def test_the_users_choice_or_the_opt_out_wins(env):
  assert not _malloc.configure(env)


def test_other_tunables_are_not_a_malloc_choice():
  assert not _malloc.users_choice({"GLIBC_TUNABLES": "glibc.rtld.nns=4"})
  assert _malloc.configure({"GLIBC_TUNABLES": "glibc.rtld.nns=4"})


# What both programs start with: glibc's malloc and free, and the resident
# set size in MiB.
_PRELUDE = """
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def resident_mib():
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * 4096 / 2 ** 20
"""

_PROGRAM = _PRELUDE + """
import ntcore
size = 16 << 20
for _ in range(2):  # the first free raises a dynamic threshold to 16 MiB
  block = libc.malloc(size)
  ctypes.memset(block, 1, size)
  before = resident_mib() - 16
  libc.free(block)
print(round(resident_mib() - before, 1))
"""


def _printed(program: str, extra_env) -> float:
  """The number `program` prints last, run in a fresh interpreter whose
  environment has none of glibc's malloc settings but `extra_env`."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith("MALLOC_") and k not in ("NTCORE_MALLOC",
                                                      "GLIBC_TUNABLES")}
  env.update(extra_env)
  out = subprocess.run([sys.executable, "-c", program], env=env,
                       capture_output=True, text=True, timeout=120,
                       check=True)
  return float(out.stdout.strip().splitlines()[-1])


def test_import_ntcore_gives_freed_blocks_back():
  assert _printed(_PROGRAM, {}) < 2
  # The control: glibc's own dynamic threshold keeps the 16 MiB block.
  assert _printed(_PROGRAM, {"NTCORE_MALLOC": "0"}) > 14


_COMPILE_PROGRAM = _PRELUDE + """
import jax, jax.numpy as jnp
import ntcore.kernel  # registers the listener where ntcore's rules allow
x = jnp.ones(3)
jax.jit(lambda x: x * 2).lower(x).compile()  # the backend starts
# 48 MiB of small blocks, freed; one block allocated after them keeps the
# free space from joining the top of the heap, so only a trim returns it.
blocks = [libc.malloc(1024) for _ in range(48 * 1024)]
for b in blocks:
  ctypes.memset(b, 1, 1024)
guard = libc.malloc(1024)
for b in blocks:
  libc.free(b)
before = resident_mib()
jax.jit(lambda x: x + 1).lower(x).compile()
print(round(before - resident_mib(), 1))
"""


def test_each_compilation_gives_the_freed_heap_back():
  assert _printed(_COMPILE_PROGRAM, {}) > 40
  # The control: without ntcore's settings the 48 MiB stay resident.
  assert _printed(_COMPILE_PROGRAM, {"NTCORE_MALLOC": "0"}) < 8
