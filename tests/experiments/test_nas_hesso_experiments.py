"""End-to-end tiny runs of the P18, P23 and P39 experiments (slow: each compiles several training steps)."""
import pytest

from experiments.runner import run_experiment


@pytest.mark.slow  # ~1 min: 2 x 2 vmapped candidate trainings
def test_random_search_nas_tiny(tmp_path):
    from experiments import random_search_nas

    res = run_experiment("random_search_nas", "smoke", out=tmp_path, quiet=True, overrides=[
        'datasets=["digits"]', "hidden=[32,32]", "sparsities=[0.5]", "candidates=4", "steps=30", "seeds=[0,1]"])
    m = res["metrics"]
    assert len(m["rows"]) == 2 and all(r["oracle"] >= max(r["selected"], r["random"]) for r in m["rows"])
    assert all(0.0 < r["weight_sparsity"] < 1.0 for r in m["rows"])
    assert "|" not in random_search_nas.summarize(res)


@pytest.mark.slow  # ~3 min: two DARTS searches and four retrainings
def test_dass_tiny(tmp_path):
    from experiments import dass

    res = run_experiment("dass", "smoke", out=tmp_path, quiet=True, overrides=[
        "channels=4", "n_cells=1", "n_nodes=2", "sparsities=[0.9]", "search_steps=4", "warmup_steps=2",
        "retrain_steps=20", "prune_end=10"])
    m = res["metrics"]
    rows = [r for r in m["rows"] if r["arch"] != "random"]
    assert {r["arch"] for r in m["rows"]} == {"dass", "darts_dense", "random", "fixed_cnn"}
    assert all(r["nonzeros"] <= max(r["budget"], 1) or r["sparsity"] == 0 for r in rows)
    assert "|" not in dass.summarize(res)


@pytest.mark.slow  # ~3 min: MLP and ViT, four methods, extraction checked against the masked network
def test_hesso_tiny(tmp_path):
    from experiments import hesso

    res = run_experiment("hesso", "smoke", out=tmp_path, quiet=True, overrides=[
        'models=["mlp"]', "sparsities=[0.7]", "warmup=20", "steps=30", "pruning_steps=15", "periods=3", "cric_steps=5",
        "cric_cycles=2"])
    rows = res["metrics"]["rows"]
    assert {r["method"] for r in rows} == {"hesso", "hesso_cric", "one_shot", "group_lasso"}
    assert all(r["params_after"] < r["params_before"] and r["max_abs_diff_masked"] < 1e-3 for r in rows)
    assert "|" not in hesso.summarize(res)
