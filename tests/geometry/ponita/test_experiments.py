"""End-to-end runs of the PΘNITA experiments with tiny overrides, data generators and calibration."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.runner import run_experiment
from geometry.ponita import Ponita, calibrate, make_model
from geometry.ponita.data import digits_point_clouds, lennard_jones_energy, rotate_2d, simulate_charged_nbody

TINY_NBODY = ["n_train=16", "n_val=0", "n_test=16", "steps=3", "batch_size=8", "warmup=1", "ponita_hidden=8",
              "ponita_layers=1", "num_ori=4", "basis_dim=8", "egnn_hidden=8", "egnn_layers=1", "e3nn_hidden=4",
              "e3nn_layers=1", "equiv_systems=4", "equiv_rotations=2", "equiv_grid_rotations=2"]


def _check_cell(module, results):
    text = module.summarize(results)
    assert text and "|" not in text and "\n" not in text
    return text


def _check(results, out, png):
    saved = json.loads((out / "results.json").read_text())
    assert saved["metrics"]["rows"] == json.loads(json.dumps(results["metrics"]["rows"]))
    assert (out / png).exists()


@pytest.mark.slow
def test_nbody_experiment_end_to_end(tmp_path):
    import experiments.ponita_nbody as module

    res = run_experiment("ponita_nbody", "smoke", out=tmp_path, quiet=True, overrides=TINY_NBODY + ['models=["ponita"]'])
    rows = {r["model"]: r for r in res["metrics"]["rows"]}
    assert {"ponita", "zero motion", "constant velocity"} == set(rows)
    # the trivial predictors are the closed forms on the regenerated test split
    sims = simulate_charged_nbody(32, seed=1000)
    test = {k: v[16:] for k, v in sims.items()}
    assert rows["constant velocity"]["test_mse"] == pytest.approx(
        float(np.mean((test["pos"] + test["vel"] - test["target"]) ** 2)), rel=1e-6)
    # a random-rotation equivariance error is measured (O=4: clearly non-zero, below 100%)
    pon = rows["ponita"]
    assert pon["num_ori"] == 4 and 1e-3 < pon["equivariance_error_vector"] < 1.0
    assert 0 < pon["equivariance_error_vector_grid_averaged"] < 1.0
    text = _check_cell(module, res)
    assert "constant velocity" in text and "did not learn" in text  # 3 steps cannot beat the baseline
    _check(res, tmp_path, "nbody.png")


@pytest.mark.slow
def test_nbody_experiment_all_models_end_to_end(tmp_path):
    res = run_experiment("ponita_nbody", "smoke", out=tmp_path, quiet=True, overrides=TINY_NBODY)
    rows = {r["model"]: r for r in res["metrics"]["rows"]}
    assert {"ponita", "egnn", "e3nn", "constant velocity"} <= set(rows)
    for name in ("ponita", "egnn", "e3nn"):
        assert np.isfinite(rows[name]["test_mse"]) and rows[name]["params"] > 0
        assert rows[name]["train_ms_per_batch"] > 0
    _check(res, tmp_path, "nbody.png")


@pytest.mark.slow
def test_energy_forces_experiment_end_to_end(tmp_path):
    res = run_experiment("ponita_energy_forces", "smoke", out=tmp_path, quiet=True, overrides=[
        "n_train=8", "n_test=8", "n_atoms=5", "equilibrate=100", "steps=2", "batch_size=4", "warmup=1",
        'models=["ponita"]', "ponita_hidden=8", "ponita_layers=1", "num_ori=4", "equiv_systems=2",
        "equiv_rotations=2", "equiv_grid_rotations=2"])
    import experiments.ponita_energy_forces as module

    trivial, row = res["metrics"]["rows"][:2]
    assert trivial["model"] == "mean energy / zero force" and trivial["force_mae"] > 0
    assert row["model"] == "ponita" and np.isfinite(row["energy_mae"]) and np.isfinite(row["force_mae"])
    assert row["learned"] == (row["energy_mae"] < trivial["energy_mae"] and row["force_mae"] < trivial["force_mae"])
    assert 0 < row["equivariance_error_forces"] < 1.0 and row["equivariance_error_energy"] > 0
    assert "mean energy / zero force" in _check_cell(module, res)
    _check(res, tmp_path, "energy_forces.png")


@pytest.mark.slow
def test_digits_and_bench_experiments_end_to_end(tmp_path):
    import experiments.bench_ponita as bench
    import experiments.ponita_rotated_digits as digits
    from sparsejax.data import load_digits

    res = run_experiment("ponita_rotated_digits", "smoke", out=tmp_path / "d", quiet=True, overrides=[
        "steps=2", "batch_size=8", "warmup=1", "n_test=16", "hidden=4", "layers=1", "num_ori=4",
        "equiv_clouds=2", "equiv_rotations=2", "equiv_grid_rotations=2"])
    rows = {r["model"]: r for r in res["metrics"]["rows"]}
    assert set(rows) == {"majority class", "ponita", "pointnet", "cnn"}
    split = load_digits(test_size=0.3, seed=0)
    majority = np.bincount(split.y_train).argmax()
    assert rows["majority class"]["upright_acc"] == pytest.approx(float(np.mean(split.y_test[:16] == majority)))
    assert 1e-3 < rows["ponita"]["equivariance_error_scalar"] < 1.0  # O=4 on SO(2): measured, not exact
    _check_cell(digits, res)
    _check(res, tmp_path / "d", "rotated_digits.png")
    res = run_experiment("bench_ponita", "smoke", out=tmp_path / "b", quiet=True, overrides=[
        "batch_size=2", "num_nodes=4", "width=4", "layers=1", "grid_sizes=[4, 8]", "l_max=[1]", "repeats=1"])
    rows = {r["model"]: r for r in res["metrics"]["rows"]}
    assert set(rows) == {"ponita O=4", "ponita O=8", "egnn", "e3nn l_max=1"}
    # XLA counts more FLOPs for a bigger grid, and the matched pair is the closest in FLOPs
    assert rows["ponita O=8"]["fwd_bwd_gflop"] > rows["ponita O=4"]["fwd_bwd_gflop"] > 0
    (match,) = res["metrics"]["flop_matched"]
    ratios = {k: abs(np.log(rows[k]["fwd_bwd_gflop"] / rows["e3nn l_max=1"]["fwd_bwd_gflop"]))
              for k in ("ponita O=4", "ponita O=8")}
    assert match["ponita"] == min(ratios, key=ratios.get)
    assert "the fwd+bwd time" in _check_cell(bench, res)
    _check(res, tmp_path / "b", "bench_ponita.png")


def test_nbody_generator_matches_a_direct_simulation():
    """Frame-30 -> frame-40 task equals a plain per-system re-simulation of the same dynamics."""
    out = simulate_charged_nbody(2, seed=0, frame_in=1, frame_out=2, sample_every=10)
    rng = np.random.default_rng(0)
    q = rng.choice([-1.0, 1.0], size=(2, 5))
    x = rng.standard_normal((2, 5, 3))
    v = rng.standard_normal((2, 5, 3))
    v *= 0.5 / np.linalg.norm(v, axis=-1, keepdims=True)

    def force(xs, qs):
        f = np.zeros_like(xs)
        for i in range(5):
            for j in range(5):
                if i != j:
                    r = xs[i] - xs[j]
                    f[i] += qs[i] * qs[j] * r / np.linalg.norm(r) ** 3
        return np.clip(f, -100, 100)

    for s in range(2):
        xs, vs = x[s].copy(), v[s] + 1e-3 * force(x[s], q[s])
        for step in range(1, 31):
            xs = xs + 1e-3 * vs
            if step == 20:
                np.testing.assert_allclose(out["pos"][s], xs, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(out["vel"][s], vs, rtol=1e-5, atol=1e-6)
            vs = vs + 1e-3 * force(xs, q[s])
        np.testing.assert_allclose(out["target"][s], xs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["charges"][..., 0], q)


def test_lennard_jones_energy_closed_form_and_digit_clouds():
    r_min = 2 ** (1 / 6)
    pair = jnp.array([[0.0, 0.0, 0.0], [r_min, 0.0, 0.0]])
    assert float(lennard_jones_energy(pair)) == pytest.approx(-1.0, abs=1e-5)
    assert float(lennard_jones_energy(pair.at[1, 0].set(1.0))) == pytest.approx(0.0, abs=1e-6)
    img = np.zeros((1, 8, 8))
    img[0, 0, 0], img[0, 7, 7] = 0.5, 1.0
    c = digits_point_clouds(img)
    np.testing.assert_allclose(c["pos"][0], [[-3.5, 3.5], [3.5, -3.5]])
    np.testing.assert_allclose(c["intensity"][0, :, 0], [0.5, 1.0])
    np.testing.assert_allclose(rotate_2d(c["pos"], np.array([np.pi / 2]))[0], [[-3.5, -3.5], [3.5, 3.5]], atol=1e-5)
    with pytest.raises(ValueError):
        digits_point_clouds(np.zeros((2, 7, 7)))


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_calibrate_preserves_feature_scale_and_equivariance():
    pos = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 3))
    mask = jnp.ones((2, 6), bool)
    model = Ponita(hidden_dim=8, num_layers=1, out_scalars=1, num_ori=4, grid_method="fibonacci")
    params = jax.jit(model.init)(jax.random.PRNGKey(1), pos, mask)
    cal = calibrate(model, params, pos, mask)
    _, state = model.apply(cal, pos, mask, mutable=["intermediates"])
    s_in, s_spatial, s_fiber = state["intermediates"]["block_0"]["conv"]["calibration"][0]
    np.testing.assert_allclose([s_spatial, s_fiber], [s_in, s_in], rtol=1e-4)
    assert jax.tree_util.tree_structure(cal) == jax.tree_util.tree_structure(params)
    egnn = make_model("egnn", hidden_dim=4, num_layers=1)
    with pytest.raises(ValueError):
        calibrate(egnn, jax.jit(egnn.init)(jax.random.PRNGKey(1), pos, mask), pos, mask)
