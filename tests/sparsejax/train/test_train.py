"""Train/eval steps, data parallelism over 4 CPU devices, and exact resume from checkpoints."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.data import synthetic_classification
from sparsejax.nn import CNN, MLP
from sparsejax.train import (
    LoopCheckpointer,
    TrainState,
    data_mesh,
    evaluate,
    fit,
    make_eval_step,
    make_train_step,
    replicate_on_mesh,
    shard_batch,
)

DATA = synthetic_classification(n_samples=256, n_features=8, n_classes=3, seed=1)
MODEL = MLP(num_classes=3, hidden=(16,))


def fresh_state(tx=optax.adam(1e-2)):
    return TrainState.create(MODEL.init(jax.random.PRNGKey(0), DATA.x_train[:1]), tx)


def test_training_reduces_loss_and_evaluates():
    tx = optax.adam(1e-2)
    step = make_train_step(MODEL.apply, tx)
    state, losses = fit(step, fresh_state(tx), DATA.x_train, DATA.y_train, steps=60, batch_size=32,
                        key=jax.random.PRNGKey(1))
    assert int(state.step) == 60 and len(losses) == 60
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    metrics = evaluate(make_eval_step(MODEL.apply), state.params, DATA.x_test, DATA.y_test, batch_size=20)
    assert 0.5 < metrics["accuracy"] <= 1.0 and metrics["loss"] > 0


@pytest.mark.slow
def test_models_width_multiplier():
    x = jnp.zeros((2, 8, 8, 1))
    count = lambda m: sum(w.size for w in jax.tree_util.tree_leaves(m.init(jax.random.PRNGKey(0), x)))
    assert count(CNN(10, width=2)) > 2.5 * count(CNN(10, width=1))
    assert MLP(10, hidden=(4,), width=2).init(jax.random.PRNGKey(0), x)["params"]["dense_0"]["kernel"].shape == (64, 8)
    with pytest.raises(ValueError, match="width"):
        MLP(10, width=0).init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="NHWC"):
        CNN(10).init(jax.random.PRNGKey(0), jnp.zeros((2, 64)))


def test_data_parallel_step_matches_single_device():
    assert jax.device_count() == 4, "conftest sets 4 host devices"
    tx = optax.sgd(0.1)
    step = make_train_step(MODEL.apply, tx)
    x, y = jnp.asarray(DATA.x_train[:64]), jnp.asarray(DATA.y_train[:64])
    single, loss1 = step(fresh_state(tx), x, y)
    mesh = data_mesh()
    assert mesh.shape["data"] == 4
    xs, ys = shard_batch((x, y), mesh)
    assert len(xs.sharding.device_set) == 4
    sharded, loss4 = step(replicate_on_mesh(fresh_state(tx), mesh), xs, ys)
    np.testing.assert_allclose(float(loss1), float(loss4), rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(single.params), jax.tree_util.tree_leaves(sharded.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="divisible"):
        shard_batch(x[:6], mesh)


class Killed(Exception):
    pass


def test_resume_after_kill_reproduces_uninterrupted_run(tmp_path, monkeypatch):
    tx = optax.adam(1e-2)
    step = make_train_step(MODEL.apply, tx)
    run = lambda ckpt: fit(step, fresh_state(tx), DATA.x_train, DATA.y_train, steps=25, batch_size=32,
                           key=jax.random.PRNGKey(7), checkpointer=ckpt)[0]
    reference = run(None)

    original = LoopCheckpointer.maybe_save

    def save_then_die(self, completed, state, force=False):
        saved = original(self, completed, state, force=force)
        if completed == 10:
            raise Killed("simulated kill after step 10")
        return saved

    monkeypatch.setattr(LoopCheckpointer, "maybe_save", save_then_die)
    with pytest.raises(Killed, match="simulated kill after step 10"):
        run(LoopCheckpointer(tmp_path / "ckpt", every=5))
    monkeypatch.setattr(LoopCheckpointer, "maybe_save", original)
    with LoopCheckpointer(tmp_path / "ckpt", every=5) as ckpt:
        assert ckpt.restore(fresh_state(tx))[0] == 10
        resumed = run(ckpt)
    assert int(resumed.step) == 25
    for a, b in zip(jax.tree_util.tree_leaves(reference), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="every"):
        LoopCheckpointer(tmp_path / "x", every=0)
