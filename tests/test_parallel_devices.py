"""`nt.batch` on 4 simulated CPU devices, and across two `jax.distributed`
processes on localhost; each runs in fresh subprocesses because the device
count is fixed when JAX starts."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ntcore import stax

_SETUP = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_num_cpu_devices", {devices})
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import ntcore as nt
    from ntcore import stax
""")

_FOUR_DEVICES = _SETUP.format(devices=4) + textwrap.dedent("""
    assert jax.local_device_count() == 4
    rng = np.random.default_rng(0)
    fc = stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Relu(),
                     stax.Dense(1))[2]
    cnn = stax.serial(stax.Conv(3, (2, 2), padding="SAME"), stax.Relu(),
                      stax.AvgPool((2, 2)), stax.GlobalAvgPool(),
                      stax.Dense(1))[2]
    x1, x2 = rng.normal(size=(9, 3)), rng.normal(size=(5, 3))
    cases = [(fc, x1, None, 3), (fc, x1, x2, 3), (fc, x1, x2, 0),
             (cnn, rng.normal(size=(5, 4, 4, 2)), None, 2)]
    errors = []
    for kernel_fn, x1, second, b in cases:
      out = nt.batch(kernel_fn, b)(x1, second, ("nngp", "ntk"))
      ref = kernel_fn(x1, second, ("nngp", "ntk"))
      errors.append(max(float(np.max(np.abs(o - r))) for o, r in
                        zip(out, ref)))
    print(json.dumps(errors))
""")

_DISTRIBUTED = _SETUP.format(devices=2) + textwrap.dedent("""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, rank, out, store = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
    jax.distributed.initialize(coordinator_address=f"localhost:{port}",
                               num_processes=2, process_id=rank)
    kernel_fn = stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Erf(),
                            stax.Dense(1))[2]
    x = np.random.default_rng(0).normal(size=(11, 3))
    batched = nt.batch(kernel_fn, 2, store_on_device=False, store=store)
    k = batched(x, None, ("nngp", "ntk"))
    np.savez(out, nngp=np.asarray(k.nngp), ntk=np.asarray(k.ntk),
             processes=jax.process_count(), devices=len(jax.devices()),
             local=jax.local_device_count(), computed=batched.last_run["computed"])
    jax.distributed.shutdown()
""")


def _python(code, *args, timeout=120):
  return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))


@pytest.mark.slow  # a subprocess: imports and compiles for 4 devices
def test_four_devices_match_unbatched():
  proc = _python(_FOUR_DEVICES)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err
  errors = json.loads(out.strip().splitlines()[-1])
  assert len(errors) == 4
  # ReLU's arc-cosine near correlation 1 amplifies round-off (see
  # test_parallel.py); the kernels are O(1).
  assert max(errors) < 1e-8, errors


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow  # two processes of ~5 s imports each, in parallel
def test_two_processes_compute_the_same_kernel_as_one(tmp_path):
  port = _free_port()
  outs = [tmp_path / f"rank{r}.npz" for r in range(2)]
  store = tmp_path / "blocks"  # shared: process 0 writes, both read
  procs = [_python(_DISTRIBUTED, port, r, outs[r], store) for r in range(2)]
  try:
    for proc in procs:
      _, err = proc.communicate(timeout=120)
      assert proc.returncode == 0, err
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  kernel_fn = stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Erf(),
                          stax.Dense(1))[2]
  x = np.random.default_rng(0).normal(size=(11, 3))
  ref = kernel_fn(x, None, ("nngp", "ntk"))
  for path in outs:
    with np.load(path) as out:
      assert (int(out["processes"]), int(out["devices"]),
              int(out["local"])) == (2, 4, 2)
      assert int(out["computed"]) == 6 * 7 // 2
      np.testing.assert_allclose(out["nngp"], ref.nngp, rtol=1e-12,
                                 atol=1e-14)
      np.testing.assert_allclose(out["ntk"], ref.ntk, rtol=1e-12, atol=1e-14)
  assert len([n for n in os.listdir(store) if n.endswith(".npz")]) == 21
  assert (store / "manifest.json").exists()
