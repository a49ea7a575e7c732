"""teddy experiment (P32): a tiny run gives every (method, recipe, level) row, claims and a summary."""
import pytest

from experiments import teddy
from experiments.runner import RunContext


@pytest.mark.slow
def test_teddy_tiny_run(tmp_path):
    cfg = {**teddy.PRESETS["smoke"], "n": 60, "feature_dim": 4, "hidden": 4, "epochs": 3, "seeds": [0, 1],
           "edge_sparsity": [0.2, 0.5], "weight_sparsity": [0.2, 0.5], "recipes": ["plain", "kd+l0"], "karate": False}
    out = teddy.run(cfg, RunContext("teddy", tmp_path, 0, quiet=True))
    rows = out["datasets"]["csbm"]["rows"]
    assert len(rows) == 4 * 2 * 2
    for r in rows:
        assert abs(r["measured_edge_sparsity"] - r["edge_sparsity"]) < 0.02
        if r["recipe"] == "kd+l0":
            assert abs(r["measured_weight_density"] - (1 - r["weight_sparsity"])) < 0.02
    assert set(out["claims"]) == {"csbm/plain", "csbm/kd+l0"}
    assert "TEDDY-UGS" in teddy.summarize({"metrics": out, "config": cfg})
