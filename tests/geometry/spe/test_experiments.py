"""End-to-end runs of the two SPE experiments with tiny overrides, resume after a kill, no ranking of NaN."""
import json
import math
import shutil

import numpy as np
import pytest

from experiments.runner import run_experiment
from sparsejax.train.divergence import DivergenceError

TINY = ["n_train=24", "n_test=8", "n_min=5", "n_max=7", "steps=3", "batch_size=8", "hidden=8",
        "pe_dim=4", "num_layers=1"]


@pytest.mark.slow
def test_spe_substructure_counting_end_to_end(tmp_path):
    import experiments.spe_substructure_counting as module

    res = run_experiment("spe_substructure_counting", "smoke", out=tmp_path, quiet=True,
                         overrides=TINY + ['methods=["lap"]', "k_eig=7"])
    rows = res["metrics"]["rows"]
    assert [r["method"] for r in rows] == ["mean predictor", "lap"]
    # the mean predictor's error is the mean absolute deviation of the test counts from the train mean
    assert rows[0]["mean_normalized_mae"] > 0
    assert all(r[f"mae_c{c}"] >= 0 for r in rows for c in (3, 4, 5, 6)) and rows[1]["ms_per_step"] > 0
    assert (tmp_path / "cycle_count_mae.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["best_method"] == "lap"
    text = module.summarize(res)
    assert "mean predictor" in text and "|" not in text and "\n" not in text


@pytest.mark.slow
def test_spe_ood_stability_end_to_end(tmp_path):
    import experiments.spe_ood_stability as module

    res = run_experiment("spe_ood_stability", "smoke", out=tmp_path, quiet=True,
                         overrides=TINY + ['methods=["spe"]', "large_n_min=9", "large_n_max=10",
                                           "perturb_fracs=[0.2]"])
    metrics = res["metrics"]
    assert metrics["test_sets"] == ["id", "perturbed_0.2", "larger"]
    (spe,) = metrics["rows"]
    assert spe["method"] == "spe" and spe["pe_sensitivity_median"] > 0
    assert set(metrics["trivial"]) == {"method", "nmae_id", "nmae_perturbed_0.2", "nmae_larger"}
    assert metrics["least_degradation"]["larger"] == "spe"
    assert (tmp_path / "ood_stability.png").exists()
    assert "mean predictor" in module.summarize(res)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_counting_resume_after_a_method_finished_keeps_its_loss_and_timing(tmp_path):
    """Issue #12: resuming after a kill that came after ``none`` had finished used to report NaN
    ``final_train_loss``/``ms_per_step`` for ``none``; both now live in the checkpointed state."""
    overrides = TINY + ['methods=["none","lap"]', "k_eig=7", "steps=4", "ckpt_every=2"]
    full = run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "a", quiet=True, overrides=overrides)
    run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "b", quiet=True, overrides=overrides)
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "lap")  # "killed" before lap started, after none finished
    resumed = run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "b", quiet=True,
                             overrides=overrides, resume=True)
    for a, b in zip(full["metrics"]["rows"][1:], resumed["metrics"]["rows"][1:]):
        assert a["method"] == b["method"]
        for key in ("final_train_loss", "mae_c3", "mae_c4", "mae_c5", "mae_c6"):
            assert b[key] == a[key], (a["method"], key)
        assert isinstance(b["ms_per_step"], float) and math.isfinite(b["ms_per_step"]) and b["ms_per_step"] > 0


@pytest.mark.slow
def test_counting_resume_reproduces_uninterrupted_run(tmp_path):
    overrides = TINY + ['methods=["lap"]', "k_eig=7", "steps=4", "ckpt_every=2"]
    full = run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "a", quiet=True,
                          overrides=overrides)
    run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "b", quiet=True, overrides=overrides)
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "lap" / "4")  # "killed" after step 2
    resumed = run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "b", quiet=True,
                             overrides=overrides, resume=True)
    for key in ("mae_c3", "mae_c4", "mae_c5", "mae_c6", "final_train_loss"):
        assert resumed["metrics"]["rows"][1][key] == full["metrics"]["rows"][1][key]


def test_divergence_stops_training_and_nan_methods_are_never_ranked(tmp_path):
    """lr = 1e6 used to exit 0 with NaN MAEs and a ``best_method``; now it raises, and with
    --allow-nonfinite the NaN method is not ranked."""
    overrides = TINY + ['methods=["lap"]', "k_eig=7", "lr=1e6", "steps=12", "ckpt_every=1000"]
    with pytest.raises(DivergenceError, match="train loss is (nan|inf)"):
        run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "a", quiet=True, overrides=overrides)
    res = run_experiment("spe_substructure_counting", "smoke", out=tmp_path / "b", quiet=True,
                         overrides=overrides, allow_nonfinite=True)
    lap = res["metrics"]["rows"][1]
    assert not np.isfinite(float(lap["mean_normalized_mae"]))
    assert res["metrics"]["best_method"] is None
