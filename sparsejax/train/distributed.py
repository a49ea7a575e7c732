"""Multi-host training through JAX's own distributed runtime (docs/multihost.md has the launch recipe).

* `initialize_from_env`: ``jax.distributed.initialize`` when ``JAX_COORDINATOR_ADDRESS``,
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` are set (or, with ``SPARSEJAX_DISTRIBUTED=auto``, JAX's
  own cluster detection: SLURM, Open MPI, Cloud TPU pods); on CPU it selects the gloo collectives.
  Without those variables it does nothing, so single-host runs are unchanged.
* `global_mesh`: a 1-D mesh over every device of every process.
* `process_rows`: this process's contiguous share of a global batch or dataset (each process loads
  only its own shard); `global_batch` assembles the per-process shards into one global array
  sharded over the mesh (``jax.make_array_from_process_local_data``); `replicate_global` places
  identical host values on every device of every process (parameters, optimizer state).
* `process_strings`: every process's string, on every process (the experiment runner uses it to
  share process 0's run directory and decision, and to check that all processes run the same code).

The jitted steps of `sparsejax.train` run unchanged on these global arrays (SPMD; XLA inserts the
cross-process gradient all-reduce), and `sparsejax.train.LoopCheckpointer` (orbax) saves and restores
them when every process calls it, each process writing its own shards.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sparsejax.core.validation import check_int

__all__ = ["ENV_VARS", "initialize_from_env", "global_mesh", "process_rows", "global_batch", "replicate_global",
           "process_strings"]

ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def initialize_from_env(env=None) -> bool:
    """Start the distributed runtime from the environment (module doc); True when it was started."""
    env = os.environ if env is None else env
    present = [v for v in ENV_VARS if env.get(v)]
    auto = env.get("SPARSEJAX_DISTRIBUTED", "") == "auto"
    if not present and not auto:
        return False
    if present and len(present) != len(ENV_VARS):
        missing = sorted(set(ENV_VARS) - set(present))
        raise ValueError(f"multi-host setup needs all of {ENV_VARS}; missing {missing}")
    if env.get("JAX_PLATFORMS", "").startswith("cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if present:
        n = check_int("JAX_NUM_PROCESSES", int(env["JAX_NUM_PROCESSES"]), minimum=1)
        pid = check_int("JAX_PROCESS_ID", int(env["JAX_PROCESS_ID"]), minimum=0, maximum=n - 1)
        jax.distributed.initialize(coordinator_address=env["JAX_COORDINATOR_ADDRESS"], num_processes=n, process_id=pid)
    else:
        jax.distributed.initialize()
    return True


def global_mesh(axis: str = "data") -> Mesh:
    """A 1-D mesh over all devices of all processes (``jax.devices()``)."""
    return Mesh(np.array(jax.devices()), (axis,))


def process_rows(n: int) -> slice:
    """Rows ``[p * n / P, (p + 1) * n / P)`` of a global batch of ``n`` rows for process ``p`` of ``P``."""
    n = check_int("n", n, minimum=1)
    procs = jax.process_count()
    if n % procs:
        raise ValueError(f"global batch of {n} rows is not divisible by the {procs} processes")
    per = n // procs
    return slice(jax.process_index() * per, (jax.process_index() + 1) * per)


def global_batch(local_tree, mesh: Mesh, axis: str = "data"):
    """One global array per leaf from this process's rows, sharded over ``axis`` of ``mesh``."""
    sharding = NamedSharding(mesh, PartitionSpec(axis))
    return jax.tree_util.tree_map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                                  local_tree)


def replicate_global(tree, mesh: Mesh):
    """Every leaf replicated on every device of every process (all processes pass the same values)."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x), np.shape(x)), tree)


def process_strings(text: str) -> list[str]:
    """``[text of process 0, text of process 1, ...]`` on every process; ``[text]`` with one process.

    A collective (``multihost_utils.process_allgather`` of the UTF-8 bytes, padded to the longest):
    every process must call it at the same point.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if jax.process_count() == 1:
        return [text]
    from jax.experimental.multihost_utils import process_allgather

    data = np.frombuffer(text.encode(), np.uint8)
    lengths = np.asarray(process_allgather(np.int32(data.size))).reshape(-1)
    padded = np.zeros(int(lengths.max()) or 1, np.uint8)
    padded[:data.size] = data
    rows = np.asarray(process_allgather(padded)).reshape(len(lengths), -1)
    return [bytes(row[:n]).decode() for row, n in zip(rows, lengths)]
