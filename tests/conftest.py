"""Test-wide setup: 4 fake CPU devices for the multi-device tests, float32 by default.

The tests' tiny configs spend most of their time in XLA compilation, so the suite compiles with
LLVM's cheap pipeline (``--xla_backend_optimization_level=0``, no expensive passes): about 20 %
faster on 2 cores, same numerics (fast-math stays off). Benchmarks and experiments do not use it.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0 "
                                   "--xla_llvm_disable_expensive_passes=true")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_platforms", "cpu")
