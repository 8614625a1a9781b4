"""`import ntcore` sets three XLA CPU options (`_xla_flags`).

The rules are checked on plain dicts; the effect on XLA is checked in fresh
interpreters, in the compiled programs: whether a convolution is a YNNPACK
fusion, whether a lone elementwise op is wrapped in a fusion of its own, as
the MLIR fusion emitters do and XLA's older emitter does not, and how much
temporary memory a program whose order matters is given.
"""

import os
import subprocess
import sys

import pytest

from ntcore import _xla_flags

FLAG = _xla_flags.YNN_CONVOLUTIONS_OFF
EMITTERS = _xla_flags.FUSION_EMITTERS_OFF
SCHEDULER = _xla_flags.MEMORY_SCHEDULER
MEASURED = (0, 10)


def test_adds_the_flag_after_the_users_flags():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  assert _xla_flags.add_flags(env, MEASURED)
  assert env["XLA_FLAGS"].split() == [
      "--xla_force_host_platform_device_count=2", FLAG, EMITTERS, SCHEDULER]


def test_adds_the_flags_to_an_empty_environment():
  env = {}
  assert _xla_flags.add_flags(env, MEASURED)
  assert env == {"XLA_FLAGS": f"{FLAG} {EMITTERS} {SCHEDULER}"}


def test_a_users_own_ynn_setting_wins():
  env = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=individual_dot"}
  assert _xla_flags.add_flags(env, MEASURED)
  assert env["XLA_FLAGS"].split() == [
      "--xla_cpu_experimental_ynn_fusion_type=individual_dot", EMITTERS,
      SCHEDULER]


def test_a_users_own_emitter_setting_wins():
  env = {"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"}
  assert _xla_flags.add_flags(env, MEASURED)
  assert env["XLA_FLAGS"].split() == [
      "--xla_cpu_use_fusion_emitters=true", FLAG, SCHEDULER]
  assert not _xla_flags.add_flags(env, MEASURED)


def test_a_users_own_scheduler_wins():
  env = {"XLA_FLAGS": "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_DEFAULT"}
  assert _xla_flags.add_flags(env, MEASURED)
  assert env["XLA_FLAGS"].split() == [
      "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_DEFAULT", FLAG, EMITTERS]


def test_opt_out():
  env = {"NTCORE_XLA_FLAGS": "0"}
  assert not _xla_flags.add_flags(env, MEASURED)
  assert "XLA_FLAGS" not in env


@pytest.mark.parametrize("release", [(0, 9), (0, 11), (1, 0)])
def test_unmeasured_jaxlib_gets_no_flag(release):
  # XLA aborts on flags it does not know; an unmeasured release gets none.
  env = {}
  assert not _xla_flags.add_flags(env, release)
  assert "XLA_FLAGS" not in env


def test_adding_twice_adds_once():
  env = {}
  _xla_flags.add_flags(env, MEASURED)
  assert not _xla_flags.add_flags(env, MEASURED)
  assert env["XLA_FLAGS"].count("ynn_fusion_type") == 1
  assert env["XLA_FLAGS"].count("fusion_emitters") == 1
  assert env["XLA_FLAGS"].count("scheduler_type") == 1


_PROGRAM = """
import ntcore, jax, jax.numpy as jnp
from jax import lax
conv = lambda x, w: lax.conv_general_dilated(
    x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
x = jnp.ones((8, 8, 8, 64), jnp.float32)
w = jnp.ones((3, 3, 64, 64), jnp.float32)
hlo = jax.jit(conv).lower(x, w).compile().as_text()
sine = jax.jit(jnp.sin).lower(x).compile().as_text()

def ntk(w1, w2, x):  # a Jacobian contraction: its order sets its memory
  def f(w1, w2, x):
    h = jnp.tanh(conv(x, w1)).reshape(x.shape[0], -1)
    return jnp.sum(h @ w2, axis=0)
  j = jax.jacobian(f, argnums=(0, 1))(w1, w2, x)
  return sum(jnp.tensordot(a, a, axes=[list(range(1, a.ndim))] * 2) for a in j)
args = (jnp.ones((3, 3, 16, 32)), jnp.ones((8 * 8 * 32, 10)), jnp.ones((4, 8, 8, 16)))
temp = jax.jit(ntk).lower(*args).compile().memory_analysis().temp_size_in_bytes
print("YNN" if "__ynn_fusion" in hlo else "XLA",
      "MLIR" if "wrapped_sine" in sine else "LLVM", temp)
"""


def _compiled_by(extra_env):
  env = {k: v for k, v in os.environ.items()
         if k not in ("XLA_FLAGS", "NTCORE_XLA_FLAGS")}
  env.update(extra_env)
  out = subprocess.run([sys.executable, "-c", _PROGRAM], env=env,
                       capture_output=True, text=True, timeout=120,
                       check=True)
  return out.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(_xla_flags._jaxlib_release() not in _xla_flags._MEASURED,
                    reason="the flag is only added on measured jaxlib releases")
def test_import_ntcore_sets_all_three_options():
  backend, emitter, temp = _compiled_by({}).split()
  assert (backend, emitter) == ("XLA", "LLVM")
  # The control: the same programs with the opt-out are a YNNPACK fusion,
  # a wrapped sine and a schedule that needs more temporary memory, so the
  # checks above can fail.
  backend0, emitter0, temp0 = _compiled_by({"NTCORE_XLA_FLAGS": "0"}).split()
  assert (backend0, emitter0) == ("YNN", "MLIR")
  assert int(temp) < int(temp0)
