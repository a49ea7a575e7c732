"""End-to-end runs of the P33 and P24 experiments with tiny overrides (slow: several jitted loops)."""
import json

import pytest

from experiments.runner import run_experiment

pytestmark = pytest.mark.slow


def test_mask_sparsity_end_to_end(tmp_path):
    run_experiment("mask_sparsity", "smoke", out=tmp_path, quiet=True,
                   overrides=["seeds=[0]", "channels=[6, 8, 8]", "base_steps=20", "sparse_steps=10", "finetune_steps=5",
                              "batch_size=32"])
    m = json.loads((tmp_path / "results.json").read_text())["metrics"]
    rows = m["rows"]
    assert [r["method"] for r in rows] == ["slimming", "mask_sparsity_slimming_mask", "mask_sparsity_uniform_mask",
                                           "l1_norm_filter"]
    # slimming and MaskSparsity(slimming mask) prune the same global 55 % (12 of 22; one more survives if a
    # layer would be emptied); the uniform rules round(0.55 * width) per layer
    assert rows[0]["pruned_channels"] == rows[1]["pruned_channels"] in (11, 12)
    assert rows[2]["pruned_channels"] == rows[3]["pruned_channels"] == 3 + 4 + 4
    for r in rows:
        assert sum(r["channels"]) == r["total_channels"] - r["pruned_channels"]
        assert 0 < r["flops_ratio"] < 1 and 0 <= r["acc_after_finetune"] <= 1
    # uniform rules prune the same count in every layer
    assert rows[2]["channels"] == rows[3]["channels"] == [3, 4, 4]
    assert (tmp_path / "mask_sparsity.png").exists()


def test_group_envelope_end_to_end(tmp_path):
    run_experiment("group_envelope", "smoke", out=tmp_path, quiet=True,
                   overrides=['models=["mlp"]', "mlp_hidden=[16, 8]", "base_steps=20", "reg_steps=10",
                              "finetune_steps=5", "lasso_strengths=[0.1]", "timing_groups=[10, 100]",
                              "timing_repeats=2"])
    m = json.loads((tmp_path / "results.json").read_text())["metrics"]
    rows = {r["method"]: r for r in m["rows"]}
    assert set(rows) == {"wgsef", "wgsef_convex", "group_lasso", "one_shot_magnitude"}
    assert rows["one_shot_magnitude"]["nonzero"] == {"dense_0": 4, "dense_1": 2}
    for r in rows.values():
        assert all(0 <= r["nonzero"][k] <= {"dense_0": 16, "dense_1": 8}[k] for k in r["nonzero"])
    assert len(m["prox_timing"]["median_seconds"]) == 2
    assert (tmp_path / "group_envelope.png").exists()
