"""sparse_ssp experiment: a tiny run gives every model x ratio row, the mean baseline and a summary."""
import pytest

from experiments import sparse_ssp
from experiments.runner import RunContext


@pytest.mark.slow
def test_sparse_ssp_tiny_run(tmp_path):
    cfg = {**sparse_ssp.PRESETS["smoke"], "shape": [4, 8, 8], "n_train": 4, "n_test": 2, "ratios": [1, 4],
           "width": 2, "levels": 1, "steps": 2, "batch": 2, "seeds": [0]}
    out = sparse_ssp.run(cfg, RunContext("sparse_ssp", tmp_path, 0, quiet=True))
    t = out["table"]
    assert set(t) == {"sparsessp", "unet3d"} and set(t["sparsessp"]) == {"1", "4"}
    assert t["sparsessp"]["4"]["slices_kept"] == [1] and t["unet3d"]["1"]["slices_kept"] == [4]
    assert all(f > 0 for f in t["sparsessp"]["1"]["flops"])
    assert abs(out["baseline"]["r2"][0]) < 0.5
    assert "mean baseline" in sparse_ssp.summarize({"metrics": out, "config": cfg})
