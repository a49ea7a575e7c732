"""End-to-end run of the affine_digits experiment with tiny settings (P19)."""
import json

import pytest

from experiments.runner import run_experiment


@pytest.mark.slow  # heavy end-to-end run; the default suite keeps CI under 15 min
def test_affine_digits_end_to_end(tmp_path):
    res = run_experiment(
        "affine_digits", "smoke", out=tmp_path, quiet=True,
        overrides=["epochs=1", "batch_size=256", "num_samples=4", "channels=[4,4]", "kernel_hidden=8",
                   "models=[\"gl2\",\"cnn\"]", "magnitudes=[0.0,1.0]"],
    )
    metrics = res["metrics"]
    assert set(metrics["models"]) == {"gl2", "cnn"}
    for summary in metrics["models"].values():
        assert 0.0 <= summary["clean_accuracy"] <= 1.0 and summary["time_per_step_s"] > 0
    # the CNN is parameter-matched to the equivariant model (within 25%)
    p = {k: v["params"] for k, v in metrics["models"].items()}
    assert abs(p["cnn"] - p["gl2"]) / p["gl2"] < 0.25
    assert len(metrics["rows"]) == 4 and isinstance(metrics["claim_affine_degrades_least"], bool)
    assert (tmp_path / "accuracy_vs_magnitude.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["experiment"] == "affine_digits"
