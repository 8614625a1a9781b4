"""Test setup for nt-conv: float64, strict rank promotion, 2 CPU devices."""

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
