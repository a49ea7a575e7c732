"""End-to-end runs of the P7 and P14 experiments with tiny overrides."""
import pytest
import json

from experiments.runner import run_experiment


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_nm_gradient_flow_end_to_end(tmp_path):
    res = run_experiment(
        "nm_gradient_flow", "smoke", out=tmp_path, quiet=True,
        overrides=['tasks=["lm"]', 'patterns=["2:4"]', 'methods=["srste", "structure_decay_geometric", "structure_decay_densify"]',
                   "steps=3", "batch_size=8", "d_model=8", "n_layers=1", "n_heads=2", "lm_sentences=30",
                   "seq_len=8"],
    )
    metrics = json.loads((tmp_path / "results.json").read_text())["metrics"]
    assert metrics["all_final_weights_exact_nm"] is True
    assert {r["method"] for r in res["metrics"]["rows"]} == {"dense", "srste", "structure_decay_geometric",
                                                         "structure_decay_densify"}
    assert set(metrics["by_task"]) == {"lm"}
    assert metrics["by_task"]["lm"]["2:4"]["srste"] > 1.0  # a perplexity
    assert (tmp_path / "nm_gradient_flow.png").exists()


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_sparse_ift_end_to_end(tmp_path):
    run_experiment(
        "sparse_ift", "smoke", out=tmp_path, quiet=True,
        overrides=['models=["mlp"]', 'families=["wide"]', "sparsities=[0.75]", "steps=4", "update_every=2",
                   "mlp_hidden=[4, 16, 16]", "batch_size=16", "seeds=[0, 1]"],
    )
    metrics = json.loads((tmp_path / "results.json").read_text())["metrics"]
    assert metrics["all_runs_iso_flop"] is True
    assert set(metrics["gain_over_dense"]) == set(metrics["gain_over_dense_std"]) == {"mlp/wide/s0.75"}
    rows = metrics["rows"]
    assert [(r["family"], r["seed"]) for r in rows] == [("dense", 0), ("dense", 1), ("wide", 0), ("wide", 1)]
    assert rows[2]["parameters"] > rows[0]["parameters"] and rows[2]["flops"] == rows[0]["flops"]
    assert (tmp_path / "sparse_ift.png").exists()
