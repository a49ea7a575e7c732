"""fssdp_moe: (slow) a tiny end-to-end run: correctness check, routing traces, cost model, summary."""
import pytest

from experiments import fssdp_moe
from experiments.runner import RunContext


@pytest.mark.slow
def test_fssdp_moe_tiny_end_to_end(tmp_path):
    cfg = {**fssdp_moe.PRESETS["smoke"], "check_steps": 2, "train_steps": 5, "sentences": 300, "aux_coefs": [0.0]}
    out = fssdp_moe.run(cfg, RunContext("fssdp_moe", tmp_path, 0, quiet=True))
    assert out["check"]["gather_equal"] and out["check"]["expert_max_diff"] < 1e-5
    t = out["traces"]["aux=0"]
    assert set(t["cost"]) == {"static_ep", "ep_rearrange", "fssdp"} and t["speedup_vs_static_ep"] > 0
    assert "measured: FSSDP" in fssdp_moe.summarize({"metrics": out})
