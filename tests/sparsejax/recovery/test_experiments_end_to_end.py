"""End-to-end runs of the P10, P31 and P22 experiments with tiny overrides (slow: tens of seconds)."""
import json

import pytest

from experiments.runner import run_experiment

pytestmark = pytest.mark.slow


def _metrics(tmp_path):
    return json.loads((tmp_path / "results.json").read_text())["metrics"]


def test_ldp_sparse_regression_end_to_end(tmp_path):
    run_experiment("ldp_sparse_regression", "smoke", out=tmp_path, quiet=True,
                   overrides=["seeds=1", "n_grid=[20000, 40000, 80000]", "eps_grid=[8.0, 16.0, 32.0]",
                              "d_grid=[4, 8, 16]", "n=40000", "n_for_d=40000", "chunk=20000"])
    m = _metrics(tmp_path)
    assert len(m["rows"]) == 9
    assert {"nldp_vs_n", "nldp_public_vs_d", "ldp_iht_vs_eps", "public_gain_vs_d"} <= set(m["slopes"])
    for r in m["rows"]:
        assert r["nldp"] >= 0 and r["lasso"] < 0.1  # non-private Lasso is accurate at these n
    assert (tmp_path / "ldp_sparse_regression.png").exists()


def test_kronecker_sbl_end_to_end(tmp_path):
    run_experiment("kronecker_sbl", "smoke", out=tmp_path, quiet=True,
                   overrides=["n=5", "m=[4, 4, 4]", "trials=1", "snr_grid=[20.0]", "m1_grid=[4]", "k_grid=[1]",
                              "size_grid=[4, 5, 6]", "irs_trials=1", "irs_snr_grid=[20.0]"])
    m = _metrics(tmp_path)
    assert set(m["sweeps"]) == {"snr", "m1", "k"}
    pt = m["sweeps"]["snr"][0]
    assert pt["nmse"]["oracle_ls"]["mean"] < 0.1 and set(pt["srr"]) >= {"am_krosbl", "svd_krosbl", "classic_sbl"}
    assert [s["unknowns"] for s in m["sizes"]] == [64, 125, 216]


def test_spectral_unmixing_end_to_end(tmp_path):
    run_experiment("spectral_unmixing", "smoke", out=tmp_path, quiet=True,
                   overrides=["side=8", "bands=30", "fractions=[0.0, 0.2]", "seeds=[0]", "max_iter=40"])
    m = _metrics(tmp_path)
    assert [t["fraction"] for t in m["table"]] == [0.0, 0.2]
    assert all(0 <= v <= 3.2 for t in m["table"] for key in ("sad",) for v in t["rrlbs"][key])
