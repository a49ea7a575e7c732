"""sparse_ssp experiment: a tiny run gives every model x ratio row, the mean baseline and a summary."""
import pytest

from experiments import sparse_ssp
from experiments.runner import RunContext


@pytest.mark.slow
def test_sparse_ssp_tiny_run(tmp_path):
    cfg = {**sparse_ssp.PRESETS["smoke"], "shape": [4, 8, 8], "n_train": 4, "n_test": 2, "ratios": [1, 4],
           "width": 2, "levels": 1, "steps": 2, "batch": 2, "structures": ["dna", "membrane"], "seeds": [0]}
    out = sparse_ssp.run(cfg, RunContext("sparse_ssp", tmp_path, 0, quiet=True))
    t = out["table"]
    assert set(t) == {"sparsessp", "sparsessp_mode", "unet3d"} and set(t["sparsessp"]) == {"1", "4"}
    assert t["sparsessp"]["4"]["slices_kept"] == [1] and t["unet3d"]["1"]["slices_kept"] == [4]
    assert all(f > 0 for f in t["sparsessp"]["1"]["flops"])
    assert len(t["sparsessp_mode"]["1"]["r2_per_structure"][0]) == 2
    # MoDE: same merged kernel size as the plain convs, so FLOPs per pass within 15% of the plain net
    assert abs(out["claims"]["flops_ratio_mode_over_ssp"] - 1) < 0.15
    assert t["sparsessp_mode"]["1"]["flops_all_structures"][0] == 2 * t["sparsessp_mode"]["1"]["flops"][0]
    assert abs(out["baseline"]["r2"][0]) < 0.5
    assert "mean baseline" in sparse_ssp.summarize({"metrics": out, "config": cfg})
