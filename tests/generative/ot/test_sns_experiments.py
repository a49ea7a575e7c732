"""End-to-end runs of the SNS experiments with tiny overrides."""
import json

import pytest

from experiments.runner import run_experiment

CASES = {
    "sinkhorn_newton_sparse": ['problems=["random", "digits_w2"]', "epsilons=[0.05]", "n_points=30",
                               "image_size=5", "threshold=1e-6"],
    "bench_sns": ["sizes=[30]", "epsilons=[0.05]", "threshold=1e-6"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_experiment_runs(name, tmp_path):
    results = run_experiment(name, "smoke", out=tmp_path, overrides=CASES[name], quiet=True)
    rows = results["metrics"]["rows"]
    assert rows and all(r["sinkhorn_final_error"] <= 1e-6 for r in rows)
    assert all({"iteration_ratio", "time_ratio", "sns_newton_iters"} <= set(r) for r in rows)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["metrics"]["rows"] and list(tmp_path.glob("*.png"))
