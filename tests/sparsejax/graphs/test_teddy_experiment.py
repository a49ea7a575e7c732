"""teddy experiment (P32): a tiny run gives every (method, recipe, level) row, claims and a summary."""
import pytest

from experiments import teddy
from sparsejax.graphs import l0_keep_count
from experiments.runner import RunContext


@pytest.mark.slow
def test_teddy_tiny_run(tmp_path):
    cfg = {**teddy.PRESETS["smoke"], "n": 60, "feature_dim": 4, "hidden": 4, "epochs": 3, "seeds": [0, 1],
           "edge_sparsity": [0.2, 0.5], "weight_sparsity": [0.2, 0.5], "recipes": ["plain", "kd+l0"], "karate": False}
    out = teddy.run(cfg, RunContext("teddy", tmp_path, 0, quiet=True))
    assert set(out["datasets"]) == {"csbm/gcn", "csbm/gin"}
    for name in ("csbm/gcn", "csbm/gin"):
        rows, total = out["datasets"][name]["rows"], out["datasets"][name]["n_params"]
        assert len(rows) == 4 * 2 * 2
        for r in rows:
            assert abs(r["measured_edge_sparsity"] - r["edge_sparsity"]) < 0.02
            if r["recipe"] == "kd+l0":
                assert r["measured_weight_density"] == pytest.approx(l0_keep_count(total, r["weight_sparsity"]) / total)
    assert set(out["claims"]) == {f"csbm/{m}/{r}" for m in ("gcn", "gin") for r in ("plain", "kd+l0")}
    assert "TEDDY-UGS" in teddy.summarize({"metrics": out, "config": cfg})
