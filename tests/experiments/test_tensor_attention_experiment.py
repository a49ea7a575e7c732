"""tensor_attention experiment pieces: the error grid shrinks with the degree for bounded entries,
the log-log slope helper recovers a power law, and (slow) a tiny end-to-end run."""
import numpy as np
import pytest

from experiments import tensor_attention
from experiments._stats import loglog_slope
from experiments.runner import RunContext


def test_error_grid_decreases_with_degree():
    cfg = {**tensor_attention.PRESETS["smoke"], "n_error": 8, "bounds": [0.5], "degrees": [0, 2, 4]}
    rows = tensor_attention.error_grid(cfg, 0)
    errs = [r["max_abs_error"] for r in rows]
    assert errs[0] > errs[1] > errs[2] and [r["rank"] for r in rows] == [1, 10, 35]
    assert [r["taylor_bound"] for r in rows] == sorted((r["taylor_bound"] for r in rows), reverse=True)


def test_loglog_slope_recovers_power_law_with_ci():
    x = np.array([10, 20, 40, 80, 160.0])
    y = 3 * x ** 1.5 * np.exp(np.random.default_rng(0).normal(0, 0.02, 5))
    s, lo, hi = loglog_slope(x, y)
    assert abs(s - 1.5) < 0.05 and lo <= 1.5 <= hi and hi - lo < 0.3
    with pytest.raises(ValueError, match="needs >= 3 positive finite points"):
        loglog_slope([1, 2], [1, 2])


@pytest.mark.slow
def test_tensor_attention_tiny_end_to_end(tmp_path):
    cfg = {**tensor_attention.PRESETS["smoke"], "degrees": [0, 4], "bounds": [0.5], "n_exact": [8, 12, 16],
           "n_fast": [64, 128, 256], "repeats": 1,
           "match3": {**tensor_attention.PRESETS["smoke"]["match3"], "steps": 3, "n_train": 128, "n_test": 64}}
    out = tensor_attention.run(cfg, RunContext("tensor_attention", tmp_path, 0, quiet=True))
    assert set(out["timings"]) == {"exact", "fast"} and len(out["match3"]) == 1
    assert "Match3" in tensor_attention.summarize({"metrics": out})
