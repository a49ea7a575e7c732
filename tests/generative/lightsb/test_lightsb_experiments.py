"""End-to-end runs of the LightSB experiments with tiny overrides."""
import json

import pytest

from experiments.runner import run_experiment

CASES = {
    "lightsb_2d": ['targets=["moons"]', "epsilons=[0.1]", "n_components=4", "steps=20", "n_train=200",
                   "n_eval=100", "n_sde_steps=5"],
    "lightsb_gaussian_benchmark": ["dims=[2]", "epsilons=[1.0]", "n_components=1", "steps=20", "n_test=50"],
    "lightsb_unpaired_translation": ["epsilons=[1.0]", "steps=20", "n_components=2", "n_show=2",
                                     "samples_per_input=2", "latent_dim=4"],
}
KEYS = {
    "lightsb_2d": {"rows", "max_fit_seconds", "all_plans_closer_than_source"},
    "lightsb_gaussian_benchmark": {"rows", "max_cbw2_uvp_percent"},
    "lightsb_unpaired_translation": {"rows", "source_inputs_classified_as_target", "best_target_class_fraction"},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_experiment_runs(name, tmp_path):
    results = run_experiment(name, "smoke", out=tmp_path, overrides=CASES[name], quiet=True)
    assert KEYS[name] <= set(results["metrics"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["metrics"]["rows"] and list(tmp_path.glob("*.png"))
