"""likelihood_sdp_clustering (P8) and lipschitz_sdp (P47): tiny end-to-end runs give every row and a summary."""
import pytest

from experiments import likelihood_sdp_clustering, lipschitz_sdp
from experiments.runner import RunContext


@pytest.mark.slow
def test_likelihood_sdp_clustering_tiny_run(tmp_path):
    cfg = {**likelihood_sdp_clustering.PRESETS["smoke"], "n": 16, "dims": [2], "separations": [6.0], "seeds": [0],
           "n_em_random": 2, "max_iter": 2}
    out = likelihood_sdp_clustering.run(cfg, RunContext("likelihood_sdp_clustering", tmp_path, 0, quiet=True))
    assert len(out["rows"]) == 1 and len(out["table"]) == 1
    assert all(0.0 <= out["rows"][0][m] <= 0.5 for m in likelihood_sdp_clustering.METHODS)
    assert "iLA-SDP" in likelihood_sdp_clustering.summarize({"metrics": out, "config": cfg})


@pytest.mark.slow
def test_lipschitz_sdp_tiny_run(tmp_path):
    cfg = {**lipschitz_sdp.PRESETS["smoke"], "widths": [4], "depth": 1, "steps": 5, "n_train": 40,
           "lower_samples": 64, "lower_refine": 2, "activations": ["maxmin", "householder"]}
    out = lipschitz_sdp.run(cfg, RunContext("lipschitz_sdp", tmp_path, 0, quiet=True))
    assert len(out["rows"]) == 2 and out["claims"]["sound"]
    for r in out["rows"]:
        assert r["lower"] <= r["nsr"] * (1 + 1e-4) <= r["naive"] * (1 + 1e-4) + 1e-9
    assert "NSR" in lipschitz_sdp.summarize({"metrics": out, "config": cfg})
