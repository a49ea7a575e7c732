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
              "e3nn_layers=1"]


def _check(results, out, png):
    saved = json.loads((out / "results.json").read_text())
    assert saved["metrics"]["rows"] == json.loads(json.dumps(results["metrics"]["rows"]))
    assert (out / png).exists()


def test_nbody_experiment_end_to_end(tmp_path):
    res = run_experiment("ponita_nbody", "smoke", out=tmp_path, quiet=True, overrides=TINY_NBODY + ['models=["ponita"]'])
    rows = {r["model"]: r for r in res["metrics"]["rows"]}
    assert {"ponita", "zero motion", "constant velocity"} == set(rows)
    assert np.isfinite(rows["ponita"]["test_mse"]) and rows["ponita"]["train_ms_per_batch"] > 0
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
        'models=["ponita"]', "ponita_hidden=8", "ponita_layers=1", "num_ori=4"])
    row = res["metrics"]["rows"][1]
    assert row["model"] == "ponita" and np.isfinite(row["energy_mae"]) and np.isfinite(row["force_mae"])
    _check(res, tmp_path, "energy_forces.png")


@pytest.mark.slow
def test_digits_and_bench_experiments_end_to_end(tmp_path):
    res = run_experiment("ponita_rotated_digits", "smoke", out=tmp_path / "d", quiet=True, overrides=[
        "steps=2", "batch_size=8", "warmup=1", "n_test=16", "hidden=4", "layers=1", "num_ori=4"])
    accs = {r["model"]: (r["upright_acc"], r["rotated_acc"]) for r in res["metrics"]["rows"]}
    assert set(accs) == {"ponita", "pointnet", "cnn"}
    assert all(0 <= a <= 1 and 0 <= b <= 1 for a, b in accs.values())
    _check(res, tmp_path / "d", "rotated_digits.png")
    res = run_experiment("bench_ponita", "smoke", out=tmp_path / "b", quiet=True, overrides=[
        "batch_size=2", "num_nodes=4", "width=4", "layers=1", "grid_sizes=[4]", "l_max=[1]", "repeats=1"])
    rows = {r["model"]: r for r in res["metrics"]["rows"]}
    assert set(rows) == {"ponita O=4", "egnn", "e3nn l_max=1"}
    assert rows["e3nn l_max=1"]["forward_ratio_vs_e3nn_l1"] == pytest.approx(1.0)
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
