"""simplex_encoding experiment: a tiny run gives timings, the image/SDF/NeRF fits, baselines, render rows and a
summary."""
import pytest

from experiments import simplex_encoding
from experiments.runner import RunContext


@pytest.mark.slow
def test_simplex_encoding_tiny_run(tmp_path):
    cfg = {**simplex_encoding.PRESETS["smoke"], "dims": [2, 3], "n_points": 256, "repeats": 1, "image_size": 16,
           "image_steps": 3, "sdf_steps": 3, "sdf_batch": 256, "sdf_eval": 512, "seeds": [0], "n_rays": 16,
           "samples": [4], "nerf_size": 8, "nerf_views": 4, "nerf_test_views": 2, "nerf_gt_samples": 16,
           "nerf_samples": 8, "nerf_batch": 64, "nerf_steps": 3, "nerf_table": 256}
    out = simplex_encoding.run(cfg, RunContext("simplex_encoding", tmp_path, 0, quiet=True))
    assert [r["d"] for r in out["timing"]] == [2, 3]
    assert [(r["grid"]["vertices"], r["simplex"]["vertices"]) for r in out["timing"]] == [(4, 3), (8, 4)]
    f = out["fits"]
    assert f["image"]["grid"]["params"] == f["image"]["simplex"]["params"]
    assert f["sdf"]["grid"]["params"] == f["sdf"]["simplex"]["params"]
    assert 0.0 <= f["sdf"]["simplex"]["iou"][0] <= 1.0 and out["render"][0]["ratio"] > 0
    n = out["nerf"]
    assert n["grid"]["params"] == n["simplex"]["params"] and len(n["simplex"]["psnr"]) == 1
    assert 0.0 < n["grid"]["step_s"][0] and -1.0 <= n["simplex"]["ssim"][0] <= 1.0
    assert "psnr" in out["baseline"]["nerf"] and (tmp_path / "simplex_encoding.png").is_file()
    text = simplex_encoding.summarize({"metrics": out, "config": cfg})
    assert "mean predictor" in text and "NeRF fit" in text and "mean colour" in text
