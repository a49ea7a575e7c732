"""pore_segmentation experiment: a tiny run gives all representations, exact mass balance and a summary."""
from experiments import pore_segmentation
from experiments.runner import RunContext


def test_pore_segmentation_tiny_run(tmp_path):
    cfg = {**pore_segmentation.PRESETS["smoke"], "size": 16, "radius": [2.0, 3.0], "seeds": [0], "days": 0.2,
           "dt": 0.02, "spots": 3, "record_every": 1, "diffusion_scales": [1.0]}
    out = pore_segmentation.run(cfg, RunContext("pore_segmentation", tmp_path, 0, quiet=True))
    s = out["summary"]["D x1"]
    assert s["voxel"]["max_err_pp"] == [0.0]
    assert s["skeleton"]["nodes"][0] < s["voxel"]["nodes"][0] and s["well-mixed"]["nodes"] == [1]
    assert max(max(s[m]["mass_drift"]) for m in pore_segmentation.METHODS) < 1e-10
    text = pore_segmentation.summarize({"metrics": out, "config": cfg})
    assert "|" not in text and "\n" not in text and "skeleton" in text
