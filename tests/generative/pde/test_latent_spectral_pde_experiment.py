"""End-to-end runs of the ``latent_spectral_pde`` experiment with tiny overrides, and resume."""
import json

import pytest

from experiments.runner import run_experiment

TINY = ["steps=3", "ckpt_every=2", "batch_size=4", "eval_batch=4", "width=8", "num_scales=1",
        "patch_size=2", "num_basis=4", "fno_width=8", "fno_modes=4", "fno_depth=2",
        "darcy_resolutions=[12]", "darcy_resolution=12", "darcy_train=8", "darcy_test=4", "darcy_fno_padding=2",
        "ns_resolution=16", "ns_train=8", "ns_test=4", "ns_t_in=2", "ns_t_out=2", "ns_dt=0.05",
        "burgers_resolution=32", "burgers_train=8", "burgers_test=4", "burgers_dt=0.01",
        "burgers_solve_factor=1"]


def _check(res, out, models, benchmarks):
    metrics = res["metrics"]
    assert {(r["benchmark"], r["model"]) for r in metrics["rows"]} == {(b, m) for b in benchmarks
                                                                       for m in list(models) + ["trivial"]}
    assert {(r["benchmark"], r["model"]) for r in metrics["rows"]} >= {(b, "trivial") for b in benchmarks}
    assert set(metrics["summary"]) == set(benchmarks)
    assert (out / "predictions.png").exists()
    assert json.loads((out / "results.json").read_text())["metrics"]["rows"]


@pytest.mark.slow  # heavy end-to-end run; the default suite keeps CI under 15 min
def test_experiment_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    overrides = TINY + ['models=["fno"]', 'benchmarks=["darcy", "navier_stokes"]', f"data_dir={tmp_path / 'data'}"]
    res = run_experiment("latent_spectral_pde", "smoke", out=out, overrides=overrides, quiet=True)
    _check(res, out, ["fno"], ["darcy", "navier_stokes"])
    assert (out / "error_vs_resolution.png").exists()
    assert (out / "checkpoints" / "navier_stokes_fno").exists()
    names = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert names[1].startswith("navier_stokes_T-4_dt-0.05_n-12_res-16")
    again = run_experiment("latent_spectral_pde", "smoke", out=out, overrides=overrides, quiet=True, resume=True)
    for a, b in zip(res["metrics"]["rows"], again["metrics"]["rows"]):
        assert a["rel_l2"] == pytest.approx(b["rel_l2"], rel=1e-6)


@pytest.mark.slow
def test_experiment_all_models(tmp_path):
    out = tmp_path / "run"
    res = run_experiment("latent_spectral_pde", "smoke", out=out, quiet=True,
                         overrides=TINY + [f"data_dir={tmp_path / 'data'}"])
    _check(res, out, ["lsm", "fno", "unet"], ["darcy", "navier_stokes", "burgers"])


@pytest.mark.slow  # about 3 min on the loaded 2-core CPU (LSM compile + Darcy data)
def test_lsm_beats_the_trivial_predictor_on_small_darcy(tmp_path):
    """A short LSM training on 16^2 Darcy has lower test error than the training-mean field."""
    import importlib

    out = tmp_path / "run"
    overrides = ["steps=120", "ckpt_every=1000", "batch_size=8", "eval_batch=16", "width=8", "num_scales=1",
                 "patch_size=4", "num_basis=4", 'models=["lsm"]', 'benchmarks=["darcy"]', "darcy_resolutions=[16]",
                 "darcy_resolution=16", "darcy_train=64", "darcy_test=16", "lr=3e-3", f"data_dir={tmp_path / 'data'}"]
    res = run_experiment("latent_spectral_pde", "smoke", out=out, overrides=overrides, quiet=True)
    s = res["metrics"]["summary"]["darcy"]
    assert s["errors"]["lsm"] < 0.8 * s["trivial"], s
    cell = importlib.import_module("experiments.latent_spectral_pde").summarize(res)
    assert "trivial" in cell and "|" not in cell
