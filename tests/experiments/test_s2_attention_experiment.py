"""s2_attention / bench_s2_attention: variants at equal attended blocks per head, work accounting,
and (slow) an end-to-end tiny run with the output keys."""
import numpy as np
import pytest

from experiments import bench_s2_attention, s2_attention
from experiments.runner import RunContext


def test_variants_have_equal_blocks_per_head_and_s2_covers_the_context():
    cfg = s2_attention.PRESETS["smoke"]
    work = {v: s2_attention.work(s2_attention.variant_masks(v, cfg), cfg) for v in s2_attention.VARIANTS}
    assert work["dense"]["pair_fraction"] == 1.0 and work["dense"]["covers_causal"]
    s2 = work["s2"]["blocks_per_head"]
    for v in ("homo", "local"):  # the equal-budget variants stay within 12% of s2's blocks per head
        assert abs(work[v]["blocks_per_head"] - s2) <= 0.12 * s2
    assert work["s2"]["covers_causal"] and not work["homo"]["covers_causal"] and not work["local"]["covers_causal"]
    assert work["s2"]["pair_fraction"] < work["s2_dense0"]["pair_fraction"] < 1.0
    with pytest.raises(ValueError, match="unknown variant 'sparse'"):
        s2_attention.variant_masks("sparse", cfg)


def test_bench_work_rows_kernel_flops_track_blocks():
    rows = bench_s2_attention.work_rows([1024, 4096], heads=8, head_dim=64, batch=1)
    assert len(rows) == 8
    for r in rows:
        assert r["flops_vs_dense"] == pytest.approx(r["block_fraction"])
        assert r["kv_bytes"] <= r["dense_kv_bytes"] and 0 < r["pair_fraction"] <= r["block_fraction"] + 1e-12
    by = {(r["seq_len"], r["pattern"]): r for r in rows}
    assert by[(4096, "phi3_small")]["block_fraction"] < by[(1024, "phi3_small")]["block_fraction"]


@pytest.mark.slow
def test_s2_attention_tiny_end_to_end(tmp_path):
    cfg = {**s2_attention.PRESETS["smoke"], "lm_steps": 3, "needle_steps": 3, "lm_sentences": 600,
           "needle_train": 64, "needle_test": 64, "variants": ["dense", "s2"]}
    out = s2_attention.run(cfg, RunContext("s2_attention", tmp_path, 0, quiet=True))
    assert set(out["table"]) == {"dense", "s2"} and len(out["rows"]) == 2
    assert all(np.isfinite(r["val_ppl"]) and 0 <= r["needle_accuracy"] <= 1 for r in out["rows"])
    assert "s2" in s2_attention.summarize({"metrics": out})
