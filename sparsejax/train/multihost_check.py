"""A multi-process data-parallel run for the multi-host test (`run_processes` launches it): each
process initialises `sparsejax.train.distributed` from the environment, loads only its rows of a
synthetic regression set, trains ``steps`` SGD steps of a linear model on the global mesh, and saves
(``phase=save``, after the steps) or restores (``phase=restore``, before continuing to ``steps``) the state with `LoopCheckpointer` from every process.
``phase=fssdp`` runs `train_fssdp` instead (the FSSDP step across processes vs one device). Process
0 prints the result as one JSON line. `launch_processes` starts any command that way (the tests of the
multi-host experiments CLI use it too)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.train import LoopCheckpointer, TrainState, make_train_step
from sparsejax.train.distributed import global_batch, global_mesh, initialize_from_env, process_rows, replicate_global


def _data(n=32, d=5):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x, (x @ rng.standard_normal((d, 1)) + 0.1).astype(np.float32)


def _mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def train(steps: int, checkpoint_dir: str | None = None, phase: str = "none") -> dict:
    """The data-parallel run on the global mesh (single- or multi-process)."""
    mesh = global_mesh()
    x, y = _data()
    rows = process_rows(len(x))
    xb, yb = global_batch((x[rows], y[rows]), mesh)  # each process loads only its shard
    tx = optax.sgd(0.1)
    params = {"w": np.zeros((x.shape[1], 1), np.float32), "b": np.zeros((1,), np.float32)}
    state = replicate_global(TrainState(params, tx.init(params), np.zeros((), np.int32)), mesh)
    step = make_train_step(lambda p, x: x @ p["w"] + p["b"], tx, _mse)
    start = 0
    ckpt = None if checkpoint_dir is None else LoopCheckpointer(checkpoint_dir, every=steps)
    if phase == "restore":
        start, state = ckpt.restore(state)
    for t in range(start, steps):
        state, _ = step(state, xb, yb)
    if phase == "save":
        ckpt.maybe_save(steps, state, force=True)
    if ckpt is not None:
        ckpt.close()
    out = {k: np.asarray(jax.device_get(v)).ravel().tolist() for k, v in state.params.items()}
    out.update(processes=jax.process_count(), devices=len(mesh.devices.ravel()), start=int(start))
    return out


def train_fssdp(steps: int) -> dict:
    """``steps`` FSSDP steps (random placements) on the global mesh vs single-device steps on each
    process's first device; max differences of the final parameters and the losses."""
    from jax.experimental.multihost_utils import process_allgather
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from sparsejax.moe.fssdp import (assignment, make_fssdp_step, make_reference_step, random_placement,
                                     shard_experts, unshard_experts)
    from sparsejax.moe.moe import init_moe_lm

    mesh = global_mesh()
    n_dev, n_exp = mesh.devices.size, 8
    params = init_moe_lm(jax.random.key(0), 20, 16, 32, n_exp)
    rest, shards, spec = shard_experts(params, n_dev)
    rest = replicate_global(rest, mesh)
    shards = jax.make_array_from_callback(shards.shape, NamedSharding(mesh, P(None, "data", None)),
                                          lambda idx: np.asarray(shards)[idx])
    tx = optax.adam(1e-2)
    ref, fs = make_reference_step(tx, k=2, aux_coef=0.01), make_fssdp_step(mesh, spec, tx, k=2, aux_coef=0.01)
    p_ref, o_ref = params, tx.init(params)
    o_fs = tx.init((rest, shards))
    rng = np.random.default_rng(0)  # same draws on every process
    loss_diff = 0.0
    for _ in range(steps):
        tok, tgt = rng.integers(0, 20, (16, 6)), rng.integers(0, 20, (16, 6))
        hosted = random_placement(rng, n_exp, n_dev, int(rng.integers(1, n_exp + 1)))
        p_ref, o_ref, l_ref, _ = ref(p_ref, o_ref, jnp.asarray(tok), jnp.asarray(tgt))
        rows = process_rows(16)
        tb, yb = global_batch((tok[rows], tgt[rows]), mesh)
        hb, ab = global_batch((hosted[_dev_rows(n_dev)], assignment(hosted, tok.size)[_dev_rows(n_dev)]), mesh)
        rest, shards, o_fs, l_fs = fs(rest, shards, o_fs, tb, yb, hb, ab)
        loss_diff = max(loss_diff, abs(float(l_ref) - float(process_allgather(l_fs, tiled=True))))
    ex = unshard_experts(jnp.asarray(process_allgather(shards, tiled=True)), spec)
    rest = {k: np.asarray(process_allgather(v, tiled=True)) for k, v in rest.items()}
    return {"expert_max_diff": max(float(jnp.abs(ex[k] - p_ref[k]).max()) for k in ex),
            "rest_max_diff": max(float(np.abs(rest[k] - np.asarray(p_ref[k])).max()) for k in rest),
            "loss_max_diff": loss_diff, "processes": jax.process_count(), "devices": int(n_dev)}


def _dev_rows(n_dev: int) -> slice:
    """This process's rows of a per-device ``(D, ...)`` array."""
    return process_rows(n_dev)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_processes(args: list[str], n_processes: int, devices_per_process: int = 2, timeout: float = 300,
                     env: dict | None = None) -> list[subprocess.CompletedProcess]:
    """Run ``python ARGS`` as ``n_processes`` local processes of one distributed JAX job over loopback
    (CPU, gloo collectives, ``devices_per_process`` emulated devices each); their completed processes."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    port = _free_port()
    procs = []
    for pid in range(n_processes):
        penv = {**os.environ, **(env or {}), "JAX_PLATFORMS": "cpu", "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                "JAX_NUM_PROCESSES": str(n_processes), "JAX_PROCESS_ID": str(pid),
                "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_process}",
                "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        procs.append(subprocess.Popen([sys.executable, *args], env=penv, cwd=root, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, (out, err) in zip(procs, outs)]


def run_processes(n_processes: int, steps: int, checkpoint_dir: str, phase: str, devices_per_process: int = 2,
                  timeout: float = 300) -> dict:
    """Launch ``n_processes`` local processes over loopback (gloo CPU collectives); process 0's output."""
    done = launch_processes(["-m", "sparsejax.train.multihost_check", str(steps), checkpoint_dir, phase],
                            n_processes, devices_per_process, timeout)
    for p in done:
        if p.returncode != 0:
            raise RuntimeError(f"a multihost_check process failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(done[0].stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    initialize_from_env()
    if sys.argv[3] == "fssdp":
        result = train_fssdp(int(sys.argv[1]))
    else:
        result = train(int(sys.argv[1]), sys.argv[2], sys.argv[3])
    if jax.process_index() == 0:
        print(json.dumps(result), flush=True)
