"""simplex_encoding experiment: a tiny run gives timings, both fits, baselines, render rows and a summary."""
import pytest

from experiments import simplex_encoding
from experiments.runner import RunContext


@pytest.mark.slow
def test_simplex_encoding_tiny_run(tmp_path):
    cfg = {**simplex_encoding.PRESETS["smoke"], "dims": [2, 3], "n_points": 256, "repeats": 1, "image_size": 16,
           "image_steps": 3, "sdf_steps": 3, "sdf_batch": 256, "sdf_eval": 512, "seeds": [0], "n_rays": 16,
           "samples": [4]}
    out = simplex_encoding.run(cfg, RunContext("simplex_encoding", tmp_path, 0, quiet=True))
    assert [r["d"] for r in out["timing"]] == [2, 3]
    assert [(r["grid"]["vertices"], r["simplex"]["vertices"]) for r in out["timing"]] == [(4, 3), (8, 4)]
    f = out["fits"]
    assert f["image"]["grid"]["params"] == f["image"]["simplex"]["params"]
    assert f["sdf"]["grid"]["params"] == f["sdf"]["simplex"]["params"]
    assert 0.0 <= f["sdf"]["simplex"]["iou"][0] <= 1.0 and out["render"][0]["ratio"] > 0
    assert "mean predictor" in simplex_encoding.summarize({"metrics": out, "config": cfg})
