"""sparse_autoencoders experiment: a tiny run gives every (k, method, aux) row, baselines and a summary."""
import pytest

from experiments import sparse_autoencoders
from experiments.runner import RunContext


@pytest.mark.slow
def test_sparse_autoencoders_tiny_run(tmp_path):
    cfg = {**sparse_autoencoders.PRESETS["smoke"], "d": 8, "n_true": 16, "n_features": 16, "ks": [2],
           "methods": ["topk", "mutual_choice"], "aux": ["none", "aux_k"], "batch": 32, "steps": 4,
           "train_tokens": 128, "eval_tokens": 64, "dead_steps": 2,
           "lm": {"sentences": 60, "eval_sentences": 20, "seq_len": 8, "steps": 60, "batch": 8, "lr": 1e-2,
                  "model": {"d_model": 8, "n_layers": 2, "n_heads": 2, "max_len": 8}, "layer": 1,
                  "n_features": 16, "sae_steps": 3}}
    out = sparse_autoencoders.run(cfg, RunContext("sparse_autoencoders", tmp_path, 0, quiet=True))
    assert len(out["rows"]) == 4 and len(out["table"]) == 4
    for r in out["rows"]:
        assert 0.0 <= r["dead_fraction"] <= 1.0 and 0.0 < r["recovery"] <= 1.0 and r["nmse"] >= 0.0
    assert abs(out["baseline"]["mean_predictor_nmse"] - 1.0) < 0.5
    assert set(out["claims"]["2"]) == {"mutual_choice"}
    assert len(out["lm"]["rows"]) == 2 and out["lm"]["mean_ablated_loss"] > out["lm"]["clean_loss"]
    for r in out["lm"]["rows"]:
        assert r["recovery"] is None and r["nmse"] >= 0.0 and r["loss_recovered"] <= 1.0 + 1e-6
    text = sparse_autoencoders.summarize({"metrics": out, "config": cfg})
    assert "mean predictor NMSE" in text and "LM setting: 2-layer d=8" in text
