"""FSSDP correctness on emulated CPU devices: gather == full params, reduce-scatter == summed replica
gradients, ``steps`` FSSDP steps with random placements == single-device training.

`run_check` starts ``python -m sparsejax.moe.fssdp_check`` in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=D`` (the device count is fixed when jax starts, so
it cannot be changed in a running process) and returns the JSON line the module prints.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from sparsejax.moe.fssdp import (
    assignment,
    make_fssdp_step,
    make_reference_step,
    random_placement,
    scatter_expert_grads,
    shard_experts,
    unshard_experts,
)
from sparsejax.moe.moe import init_moe_lm


def check(n_devices: int = 8, n_experts: int = 8, steps: int = 20, k: int = 2, vocab: int = 20) -> dict:
    """The three FSSDP checks on this process's ``n_devices`` devices (see module doc)."""
    D, E, K, V = n_devices, n_experts, k, vocab
    if len(jax.devices()) < D:
        raise ValueError(f"check needs {D} devices, this process has {len(jax.devices())} (use run_check)")
    mesh = Mesh(np.array(jax.devices()[:D]), ("data",))
    rng = np.random.default_rng(0)
    params = init_moe_lm(jax.random.key(0), V, 16, 32, E)
    rest, shards, spec = shard_experts(params, D)
    shards = jax.device_put(shards, NamedSharding(mesh, P(None, "data", None)))
    out = {}

    # every device's gather of the shards (all experts hosted) is the full expert params
    full = jax.shard_map(lambda s: jax.lax.all_gather(s, "data", axis=1, tiled=True)[None], mesh=mesh,
                         in_specs=P(None, "data", None), out_specs=P("data"))(shards)
    out["gather_equal"] = all(np.array_equal(np.asarray(unshard_experts(full[d], spec)[k]), np.asarray(params[k]))
                              for d in range(D) for k in ("w1", "b1", "w2", "b2"))

    # reduce-scatter of per-device replica gradients (masked to hosted experts) == their sum, on the owners
    hosted = random_placement(rng, E, D, 3)
    grads = rng.standard_normal((D, *shards.shape)).astype(np.float32)  # device d's gradient (E, D, S)
    got = jax.shard_map(lambda g, h: scatter_expert_grads(g[0], h[0], "data"), mesh=mesh,
                        in_specs=(P("data"), P("data")), out_specs=P(None, "data", None))(jnp.asarray(grads),
                                                                                           jnp.asarray(hosted))
    expect = (grads * hosted[:, :, None, None]).sum(0)
    out["reduce_scatter_max_err"] = float(np.abs(np.asarray(got) - expect).max())

    # FSSDP steps with a fresh random placement each step == single-device Adam training
    tx = optax.adam(1e-2)
    ref, fs = make_reference_step(tx, k=K, aux_coef=0.01), make_fssdp_step(mesh, spec, tx, k=K, aux_coef=0.01)
    p_ref, o_ref, o_fs = params, tx.init(params), tx.init((rest, shards))
    losses = []
    for t in range(steps):
        tok, tgt = (jnp.asarray(rng.integers(0, V, (16, 6))) for _ in range(2))
        h = random_placement(rng, E, D, int(rng.integers(1, E + 1)))
        p_ref, o_ref, l_ref, _ = ref(p_ref, o_ref, tok, tgt)
        rest, shards, o_fs, l_fs = fs(rest, shards, o_fs, tok, tgt, jnp.asarray(h), jnp.asarray(assignment(h, tok.size)))
        losses.append([float(l_ref), float(l_fs)])
    ex = unshard_experts(shards, spec)
    out["expert_max_diff"] = max(float(jnp.abs(ex[k] - p_ref[k]).max()) for k in ex)
    out["rest_max_diff"] = max(float(jnp.abs(rest[k] - p_ref[k]).max()) for k in rest)
    out["loss_max_diff"] = max(abs(a - b) for a, b in losses)
    out["moved"] = float(jnp.abs(p_ref["w1"] - params["w1"]).max())
    return out


def run_check(n_devices: int = 8, steps: int = 20, timeout: float = 900) -> dict:
    """`check` in a fresh subprocess with ``n_devices`` emulated CPU devices."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_devices}", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-m", "sparsejax.moe.fssdp_check", str(n_devices), str(steps)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"fssdp_check failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(check(int(sys.argv[1]), steps=int(sys.argv[2]))))
