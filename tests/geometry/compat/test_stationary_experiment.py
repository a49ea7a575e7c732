"""stationary_representations experiment: a tiny run gives a lower-triangular matrix per arm and a summary."""
import numpy as np
import pytest

from experiments import stationary_representations
from experiments.runner import RunContext


@pytest.mark.slow
def test_stationary_representations_tiny_run(tmp_path):
    cfg = {**stationary_representations.PRESETS["smoke"], "epochs": 1, "seeds": [0], "hidden": [8]}
    out = stationary_representations.run(cfg, RunContext("stationary_representations", tmp_path, 0, quiet=True))
    assert [r["arm"] for r in out["rows"]] == ["er", "simplex_ce", "simplex_hoc"]
    for r in out["rows"]:
        m = np.array(r["matrix"])
        assert m.shape == (4, 4) and np.all(m[np.triu_indices(4, 1)] == 0) and np.all(m[np.tril_indices(4)] > 0)
        assert 0.0 <= r["ac"] <= 1.0 and len(r["pairwise"]) == 3
    assert "HOC highest AC" in stationary_representations.summarize({"metrics": out, "config": cfg})
