"""End-to-end runs of the SNS experiments with tiny overrides: SNS converges and needs fewer iterations."""
import importlib
import json

import pytest

from experiments.runner import run_experiment

CASES = {
    "sinkhorn_newton_sparse": ['problems=["random", "digits_w2"]', "epsilons=[0.005]", "n_points=40",
                               "image_size=6", "threshold=1e-6", "repeats=1"],
    "bench_sns": ["sizes=[40]", "epsilons=[0.005]", "threshold=1e-6", "repeats=1"],
}


# bench_sns repeats the same solvers on a size sweep: slow; the experiment case stays in the default run
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "bench_sns" else n for n in sorted(CASES)])
def test_experiment_sns_converges_with_fewer_iterations(name, tmp_path):
    results = run_experiment(name, "smoke", out=tmp_path, overrides=CASES[name], quiet=True)
    rows = results["metrics"]["rows"]
    assert rows
    for r in rows:
        assert r["sinkhorn_final_error"] <= 1e-6 and r["sns_converged"] and r["both_converged"]
        assert r["sns_iters"] < r["sinkhorn_iters"] and r["iteration_ratio"] > 1.5, r
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["metrics"]["rows"] and list(tmp_path.glob("*.png"))
    cell = importlib.import_module(f"experiments.{name}").summarize(saved)
    assert cell and "|" not in cell and "\n" not in cell
