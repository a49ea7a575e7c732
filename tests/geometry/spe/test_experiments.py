"""End-to-end runs of the two SPE experiments with tiny overrides."""
import json
import shutil

import pytest

from experiments.runner import run_experiment

TINY = ["n_train=24", "n_test=8", "n_min=5", "n_max=7", "steps=3", "batch_size=8", "hidden=8",
        "pe_dim=4", "num_layers=1"]


def test_spe_substructure_counting_end_to_end(tmp_path):
    res = run_experiment("spe_substructure_counting", "smoke", out=tmp_path, quiet=True,
                         overrides=TINY + ['methods=["lap"]', "k_eig=7"])
    rows = res["metrics"]["rows"]
    assert [r["method"] for r in rows] == ["lap"]
    assert all(r[f"mae_c{c}"] >= 0 and r["ms_per_step"] > 0 for r in rows for c in (3, 4, 5, 6))
    assert (tmp_path / "cycle_count_mae.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["best_method"] == "lap"


def test_spe_ood_stability_end_to_end(tmp_path):
    res = run_experiment("spe_ood_stability", "smoke", out=tmp_path, quiet=True,
                         overrides=TINY + ['methods=["spe"]', "large_n_min=9", "large_n_max=10",
                                           "perturb_fracs=[0.2]"])
    metrics = res["metrics"]
    assert metrics["test_sets"] == ["id", "perturbed_0.2", "larger"]
    (spe,) = metrics["rows"]
    assert spe["method"] == "spe" and spe["pe_sensitivity_median"] > 0
    assert spe["degradation_larger"] == spe["nmae_larger"] / spe["nmae_id"]
    assert (tmp_path / "ood_stability.png").exists()


@pytest.mark.slow
def test_counting_resume_reproduces_uninterrupted_run(tmp_path):
    overrides = TINY + ['methods=["lap"]', "k_eig=7", "steps=4", "ckpt_every=2"]
    full = run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "a", quiet=True,
                          overrides=overrides)
    run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "b", quiet=True, overrides=overrides)
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "lap" / "4")  # "killed" after step 2
    resumed = run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "b", quiet=True,
                             overrides=overrides, resume=True)
    for key in ("mae_c3", "mae_c4", "mae_c5", "mae_c6"):
        assert resumed["metrics"]["rows"][0][key] == pytest.approx(full["metrics"]["rows"][0][key], rel=1e-5)
