"""pore_segmentation experiment: a tiny run gives all representations, both geometries, the dt study, exact mass
balance and a one-cell summary."""
from experiments import pore_segmentation
from experiments.runner import RunContext


def test_pore_segmentation_tiny_run(tmp_path):
    cfg = {**pore_segmentation.PRESETS["smoke"], "size": 16, "radius": [2.0, 3.0], "grf_sigma": 1.5, "seeds": [0],
           "days": 0.2, "dt": 0.02, "record_days": 0.04, "spots": 3, "diffusion_scales": [1.0],
           "dt_study": {"dts": [0.04, 0.02, 0.01], "schemes": ["split", "coupled"], "tol_pp": 50.0}}
    out = pore_segmentation.run(cfg, RunContext("pore_segmentation", tmp_path, 0, quiet=True))
    for geometry in ("spheres", "grf"):
        s = out["summary"][geometry]["D x1"]
        assert s["voxel"]["max_err_pp"] == [0.0]
        assert s["skeleton"]["nodes"][0] < s["voxel"]["nodes"][0] and s["well-mixed"]["nodes"] == [1]
        assert max(max(s[m]["mass_drift"]) for m in pore_segmentation.METHODS) < 1e-10
    st = out["dt_study"]
    assert set(st["schemes"]) == {"split", "coupled"} and len(st["schemes"]["coupled"]["change_pp"]["voxel"]) == 2
    assert st["reference_converged"] and st["converged_dt"] == 0.04
    assert (tmp_path / "pore_segmentation_dt.png").exists() or any(tmp_path.rglob("pore_segmentation_dt.png"))
    text = pore_segmentation.summarize({"metrics": out, "config": cfg})
    assert "|" not in text and "\n" not in text and "skeleton" in text and "dt study coupled" in text
