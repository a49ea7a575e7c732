"""No silent divergence (issue #12): a diverging run exits non-zero with the DivergenceError message
instead of writing chance-level metrics as a result."""
import pytest

from experiments import runner

TINY = ['models=["mlp"]', "widths=[1]", "sparsities=[0.5]", 'distributions=["uniform","erk"]', "steps=20",
        "batch_size=32"]


def test_random_pruning_at_lr_1e30_fails_with_the_divergence_message(tmp_path, capsys):
    # before: exit 0, test_accuracy 0.1 for dense and sparse and gap_to_dense 0.0
    out = tmp_path / "run"
    code = runner.main(["run", "random_pruning", "--out", str(out), "--quiet", "--tracker", "none",
                        *[a for item in TINY + ["learning_rate=1e30"] for a in ("--set", item)]])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("python -m experiments: error: DivergenceError: mlp-w1-dense-s0.0-seed0/loss is nan at step")
    assert "(no checkpoint was written); lower the learning rate, or pass --allow-nonfinite" in err
    assert not (out / "results.json").exists()
