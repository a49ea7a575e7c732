"""Test-wide setup: 4 fake CPU devices for the multi-device tests, float32 by default."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_platforms", "cpu")
