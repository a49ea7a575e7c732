"""End-to-end runs of the slicegpt, s2ft and flora experiments at tiny configs (slow: JIT compiles dominate)."""
import math

import pytest

from experiments.runner import load, run_experiment


@pytest.mark.slow
def test_slicegpt_experiment_end_to_end(tmp_path):
    res = run_experiment("slicegpt", "smoke", out=tmp_path, quiet=True,
                         overrides=["pretrain_steps=20", "pretrain_sentences=300", "eval_sentences=60",
                                    "sparsities=[0.25]", 'rotations=["pca","none"]', "rft_steps=3",
                                    "calibration_windows=16"])
    m = res["metrics"]
    assert {(r["rotation"], r["sparsity"]) for r in m["rows"]} == {("pca", 0.25), ("none", 0.25)}
    for r in m["rows"]:  # width 48 of 64, shortcut matrices counted, fewer parameters than the dense model
        assert r["width"] == 48 and r["params"] < m["dense"]["params"] and math.isfinite(r["rft_ppl"])
    assert {"pca_beats_other_rotations_everywhere", "25pct_removed_keeps_90pct_quality"} <= set(m["claims"])
    assert list(tmp_path.rglob("slicegpt.png")) and "%" in load("slicegpt").summarize(res)


@pytest.mark.slow
def test_s2ft_experiment_end_to_end(tmp_path):
    res = run_experiment("s2ft", "smoke", out=tmp_path, quiet=True,
                         overrides=["pretrain_steps=20", "finetune_steps=3", "pretrain_sentences=300",
                                    "finetune_sentences=60", "eval_sentences=60", "lr_grid=[0.01]", "seeds=[0,1]",
                                    'methods=["no_finetune","s2ft_random","lora","full"]'])
    m = res["metrics"]
    assert set(m["methods"]) == {"no_finetune", "s2ft_random", "lora", "full"}
    assert m["methods"]["s2ft_random"]["trainable"] == m["budget"]["s2ft"] + m["budget"]["new_row_params"]
    assert m["budget"]["lora_rank"] == 1 and m["methods"]["full"]["trainable"] == m["budget"]["model"]
    assert all(len(v["ppl_B"]) == 2 for v in m["methods"].values())
    assert m["costs"]["s2ft"]["flops"] < m["costs"]["full"]["flops"]
    assert "LoRA r=1" in load("s2ft").summarize(res)


@pytest.mark.slow
def test_flora_experiment_end_to_end(tmp_path):
    res = run_experiment("flora", "smoke", out=tmp_path, quiet=True,
                         overrides=["pretrain_steps=20", "finetune_steps=3", "lr_grid=[0.003]", "seeds=[0]",
                                    "flora_ranks=[2]", 'tasks=["digits_5_9"]'])
    m = res["metrics"]
    rows = m["tasks"]["digits_5_9"]["methods"]
    assert set(rows) == {"head_only", "full", "flora_r2_k2", "lora_r2_k2"}
    assert rows["flora_r2_k2"]["trainable"] == m["budgets"][0]["flora_params"] + rows["head_only"]["trainable"]
    assert 0 <= m["tasks"]["digits_5_9"]["majority_accuracy"] <= 1
    assert "digits_5_9" in load("flora").summarize(res)
