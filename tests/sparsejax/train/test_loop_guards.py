"""fit's logging and divergence guard, and checkpoint fingerprints."""
import json

import jax
import numpy as np
import optax
import pytest

from sparsejax.nn import MLP
from sparsejax.train import LoopCheckpointer, TrainState, fit, make_train_step
from sparsejax.train.checkpoint import CheckpointMismatch, use_fingerprint
from sparsejax.train.divergence import DivergenceError, allow_nonfinite
from sparsejax.train.tracking import use_writer

MODEL = MLP(num_classes=3, hidden=(8,))
X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
Y = (np.arange(64) % 3).astype(np.int32)


class Recorder:
    def __init__(self):
        self.rows, self.flushes = [], 0

    def write_scalars(self, step, scalars):
        self.rows.append((step, dict(scalars)))

    def flush(self):
        self.flushes += 1


def _run(lr, steps, ckpt=None, **kw):
    tx = optax.sgd(lr)
    state = TrainState.create(MODEL.init(jax.random.PRNGKey(0), X[:1]), tx)
    return fit(make_train_step(MODEL.apply, tx), state, X, Y, steps=steps, batch_size=16, key=jax.random.PRNGKey(1),
               checkpointer=ckpt, **kw)


def test_fit_logs_every_loss_and_extra_scalars_under_the_checkpoint_tag(tmp_path):
    writer = Recorder()
    with use_writer(writer), LoopCheckpointer(tmp_path / "dense-seed0", every=4) as ckpt:
        _, losses = _run(0.1, 10, ckpt, log_every=3, scalars_fn=lambda s: {"lr": 0.1, "step": s.step})
    logged = [(t, r["dense-seed0/loss"]) for t, r in writer.rows if "dense-seed0/loss" in r]
    assert logged == list(enumerate(losses)) and len(losses) == 10
    extra = [(t, r) for t, r in writer.rows if "dense-seed0/lr" in r]
    assert extra and all(r["dense-seed0/lr"] == pytest.approx(0.1) and r["dense-seed0/step"] == t + 1
                         for t, r in extra)
    assert writer.flushes == 1


def test_divergence_stops_with_step_and_last_finite_checkpoint(tmp_path):
    with LoopCheckpointer(tmp_path / "c", every=1) as ckpt:
        with pytest.raises(DivergenceError, match=r"c/loss is (nan|inf) at step (\d+) \(last finite checkpoint: step \d+\)"):
            _run(1e30, 20, ckpt)
        step = ckpt.latest_step()
        assert step is not None
        _, state = ckpt.restore(TrainState.create(MODEL.init(jax.random.PRNGKey(0), X[:1]), optax.sgd(1e30)))
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(state.params))
    with allow_nonfinite():
        _, losses = _run(1e30, 6)
    assert not np.isfinite(losses).all()


def test_fingerprint_refuses_checkpoints_of_another_run(tmp_path):
    a = {"experiment": "e", "config": {"lr": 0.03}, "seed": 0, "code": {"commit": "x"}}
    b = {**a, "config": {"lr": 0.003}}
    with use_fingerprint(a), LoopCheckpointer(tmp_path / "m", every=2) as ckpt:
        _run(0.1, 4, ckpt)
    assert json.loads((tmp_path / "m" / "fingerprint.json").read_text()) == a
    with use_fingerprint(b), pytest.raises(CheckpointMismatch, match=r"holds checkpoints of another run \(config.lr differ\)"):
        LoopCheckpointer(tmp_path / "m", every=2)
    with pytest.raises(CheckpointMismatch, match=r"\(seed differ\)"):
        LoopCheckpointer(tmp_path / "m", every=2, fingerprint={**a, "seed": 1})
    with use_fingerprint(a), LoopCheckpointer(tmp_path / "m", every=2) as ckpt:
        assert ckpt.latest_step() == 4  # the same run resumes
    with LoopCheckpointer(tmp_path / "m", every=2) as ckpt:  # outside a run: plain orbax behaviour
        assert ckpt.latest_step() == 4
    (tmp_path / "m" / "fingerprint.json").unlink()
    with use_fingerprint(a), pytest.raises(CheckpointMismatch, match="without a fingerprint"):
        LoopCheckpointer(tmp_path / "m", every=2)
    with use_fingerprint(b), LoopCheckpointer(tmp_path / "fresh", every=2) as ckpt:  # empty dir: stamped
        assert ckpt.latest_step() is None
    assert json.loads((tmp_path / "fresh" / "fingerprint.json").read_text()) == b
