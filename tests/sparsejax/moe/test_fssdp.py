"""MoE routing and FSSDP: top-k routing without dropping, the load-balancing loss, the placement
planner and token assignment, the cost model, and (in a subprocess on 8 emulated CPU devices) gather
== full params, reduce-scatter == summed gradients, 20 FSSDP steps == single-device training."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.moe.fssdp import STRATEGIES, assignment, iteration_cost, plan_placement, random_placement
from sparsejax.moe.fssdp_check import run_check
from sparsejax.moe.moe import init_moe_lm, load_balancing_loss, moe_ffn, route


@pytest.mark.slow
def test_fssdp_on_8_emulated_devices_matches_single_device():
    out = run_check(8, steps=20)
    assert out["gather_equal"]
    assert out["reduce_scatter_max_err"] < 1e-5
    assert out["moved"] > 1e-3  # training changed the experts ...
    assert out["expert_max_diff"] < 1e-5 and out["rest_max_diff"] < 1e-5 and out["loss_max_diff"] < 1e-5  # ... identically


def test_routing_top_k_no_dropping_and_balancing_loss():
    params = jax.jit(init_moe_lm, static_argnums=(1, 2, 3, 4))(jax.random.key(0), 10, 8, 16, 4)
    x = jax.random.normal(jax.random.key(1), (50, 8))
    combine, probs, chosen = jax.jit(route, static_argnums=2)(params["router"], x, 2)
    assert (np.asarray(chosen).sum(1) == 2).all()  # every token gets exactly k experts
    np.testing.assert_allclose(np.asarray(combine).sum(1), 1.0, rtol=1e-6)
    y, aux, load = jax.jit(moe_ffn, static_argnums=2)(params, x, 2)
    assert int(load.sum()) == 100 and y.shape == (50, 8)
    uniform = jnp.full((8, 4), 0.25)
    rr = jnp.asarray(np.eye(4, dtype=bool)[np.arange(8) % 4])
    assert float(load_balancing_loss(uniform, rr)) == pytest.approx(1.0)
    skew = jnp.asarray(np.eye(4, dtype=bool)[np.zeros(8, int)])
    assert float(load_balancing_loss(jnp.asarray(np.eye(4)[np.zeros(8, int)]), skew)) == pytest.approx(4.0)


def test_planner_replicates_hot_experts_and_assignment_is_a_partition():
    loads = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0.0, 0.0])
    h = plan_placement(loads, 4, 4)
    assert h.shape == (4, 8) and (h.sum(1) == 4).all() and h.any(0).all()
    assert h[:, 0].sum() == 4 and h[:, 0].sum() >= h[:, 1].sum() >= h[:, 7].sum()
    a = assignment(h, 30)
    assert (a.sum(0) == 1).all()  # every (expert, token) computed by exactly one device ...
    assert not (a & ~h[:, :, None]).any()  # ... that hosts the expert
    r = random_placement(np.random.default_rng(0), 8, 4, 3)
    assert (r.sum(1) == 3).all() and r.any(0).all()
    with pytest.raises(ValueError, match="cannot host 8 experts"):
        plan_placement(loads, 2, 3)
    with pytest.raises(ValueError, match=r"experts \[1\] have none"):
        assignment(np.array([[True, False]]), 3)


def test_cost_model_uniform_and_skewed_routing():
    kw = dict(n_devices=4, tokens_per_device=4096, k=2, d_model=1024, d_hidden=4096, flops_per_s=1e14,
              bytes_per_s=1e11)
    uni = iteration_cost(np.full((5, 8), 1 / 8), **kw)
    assert set(uni) == set(STRATEGIES)
    assert uni["static_ep"]["mean_straggler"] == pytest.approx(1.0)
    skew = np.tile(np.array([0.6, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.02]), (5, 1))
    s = iteration_cost(skew, **kw)
    assert s["static_ep"]["mean_straggler"] > 2 and s["fssdp"]["mean_straggler"] < s["static_ep"]["mean_straggler"]
    assert s["fssdp"]["mean_time_s"] < s["static_ep"]["mean_time_s"]
