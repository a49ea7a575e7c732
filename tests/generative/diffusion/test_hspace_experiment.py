"""End-to-end run of the hspace_directions experiment and resume equality of its training loop."""
import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments.hspace_directions as hd
from experiments.runner import run_experiment
from generative.diffusion import UNet, make_schedule
from sparsejax.train import LoopCheckpointer

TINY = ["train_steps=4", "ckpt_every=2", "num_seeds=2", "num_samples=24", "num_inverted=12", "num_examples=4", "num_edit=3",
        "num_alphas=3", "num_pcs=2", "jacobian_images=1", "jacobian_vectors=1", "jacobian_iters=2", "ddim_steps=3",
        "num_train=64", "channels=[4]", "time_dim=4", "batch_size=16"]


@pytest.mark.slow  # heavy end-to-end run; the default suite keeps CI under 15 min
def test_hspace_directions_end_to_end(tmp_path):
    res = run_experiment("hspace_directions", "smoke", out=tmp_path, overrides=TINY, quiet=True)
    m = res["metrics"]
    assert m["num_seeds"] == 2
    assert len(m["rows"]) == 2 * (5 * 3 + 2 + 1)  # per seed: sup/proj/labelled per factor + 2 PCs + random
    assert np.asarray(m["pca_abs_corr_with_factors"]).shape == (2, 5)
    assert m["jacobian"] and all(r["step"] == 0 for r in m["jacobian"])
    cell = hd.summarize(json.loads((tmp_path / "results.json").read_text()))
    assert "±" in cell and "|" not in cell and "\n" not in cell
    assert json.loads((tmp_path / "results.json").read_text())["config"]["train_steps"] == 4
    for png in ("samples.png", "edit_grid.png", "alignment_selectivity.png"):
        assert (tmp_path / png).stat().st_size > 0
    assert (tmp_path / "checkpoints" / "ddpm").is_dir()


class _Dies(LoopCheckpointer):
    def maybe_save(self, completed_steps, state, *, force=False):
        saved = super().maybe_save(completed_steps, state, force=force)
        if saved and completed_steps == 2:
            raise KeyboardInterrupt
        return saved


@pytest.mark.slow
def test_training_resume_reproduces_uninterrupted_run(tmp_path, monkeypatch):
    config = {**hd.PRESETS["smoke"], "train_steps": 4, "ckpt_every": 2, "batch_size": 8, "ema_decay": 0.5}
    images = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, size=(16, 8, 8, 1)), jnp.float32)
    model, sched = UNet(channels=(4,), time_dim=4), make_schedule("cosine", 20)

    starts = []

    def ctx(name):
        def progress(it, **kw):
            starts.append(it.start)
            return it

        return SimpleNamespace(checkpoint_dir=lambda tag: tmp_path / name / tag, log=lambda m: None, progress=progress)

    full, loss_full = hd.train_ddpm(config, ctx("a"), images, model, sched, jax.random.PRNGKey(0))
    monkeypatch.setattr(hd, "LoopCheckpointer", _Dies)
    with pytest.raises(KeyboardInterrupt):
        hd.train_ddpm(config, ctx("b"), images, model, sched, jax.random.PRNGKey(0))
    monkeypatch.setattr(hd, "LoopCheckpointer", LoopCheckpointer)
    resumed, loss_resumed = hd.train_ddpm(config, ctx("b"), images, model, sched, jax.random.PRNGKey(0))
    assert starts == [0, 0, 2]  # the resumed run really continued from the step-2 checkpoint
    assert loss_resumed == loss_full
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(a, b)


def test_planted_h_direction_is_more_selective_than_a_random_one():
    """Toy denoiser whose 5-d bottleneck *is* the factor vector (x0_pred = render(f0 + shift)): the
    planted brightness direction edits brightness alone (selectivity ~ 1), a random one does not."""
    from generative.diffusion import ddim_sample, edit_along_direction, render_shapes

    sched = make_schedule("cosine", 20)
    base = jnp.array([6.0, 7.5, 7.5, 0.6, 0.0])
    gain = jnp.array([2.0, 1.5, 1.5, 0.3, 0.0])

    def eps_fn(x, t, dh):
        a = sched.alpha_bars[t].reshape(-1, 1, 1, 1)
        h = jnp.zeros((x.shape[0], 5))
        x0 = render_shapes(base + gain * (h if dh is None else h + dh), 16)
        return (x - jnp.sqrt(a) * x0) / jnp.sqrt(1.0 - a), h

    steps, alphas = 4, np.linspace(-1.0, 1.0, 5)
    x_T = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 1))
    assert ddim_sample(eps_fn, sched, x_T, steps).x0.shape == (2, 16, 16, 1)
    scale = np.array([1.0, 1.0, 1.0, 0.2, 0.5])

    def target_selectivity(direction):
        d = jnp.broadcast_to(direction, (steps, 5))
        imgs = np.asarray(edit_along_direction(eps_fn, sched, x_T, d, jnp.asarray(alphas, jnp.float32), steps))
        est = hd.measure_factors(imgs.reshape((-1, 16, 16, 1))).reshape(len(alphas), 2, 5)
        return hd.selectivity(hd._effects(est, alphas, scale), 3)

    planted = target_selectivity(jnp.eye(5)[3])
    rand = jax.random.normal(jax.random.PRNGKey(1), (5,)).at[4].set(0.0)
    random_sel = target_selectivity(rand / jnp.linalg.norm(rand))
    assert planted > 0.9 and planted > random_sel + 0.3, (planted, random_sel)
