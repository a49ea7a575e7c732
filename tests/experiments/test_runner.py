"""The experiment CLI: discovery, config errors, what a run leaves behind, and --resume."""
import json

import pytest

import experiments.random_pruning as random_pruning
from experiments import runner

TINY = ["models=[\"mlp\"]", "widths=[1,2]", "sparsities=[0.9]", "distributions=[\"uniform\",\"erk\"]",
        "steps=20", "batch_size=32"]


def test_every_experiment_is_listed_with_presets_and_description(capsys):
    names = runner.available()
    assert "random_pruning" in names and "bench_masked_step" in names
    for name, description in names.items():
        module = runner.load(name)
        assert description, f"{name} needs a one-line module docstring"
        assert {"smoke", "full"} <= set(module.PRESETS), f"{name} needs smoke and full presets"
        assert set(module.PRESETS["smoke"]) == set(module.PRESETS["full"]), f"{name}: presets differ in keys"
    assert runner.main(["list"]) == 0
    assert "random_pruning" in capsys.readouterr().out


def test_config_errors_list_valid_choices():
    with pytest.raises(ValueError, match="valid experiments: .*random_pruning"):
        runner.load("no_such_experiment")
    with pytest.raises(ValueError, match="valid presets: smoke, full"):
        runner.make_config(random_pruning, "huge")
    with pytest.raises(ValueError, match="valid keys: .*steps"):
        runner.make_config(random_pruning, "smoke", ["stepz=3"])
    with pytest.raises(ValueError, match="key=value"):
        runner.make_config(random_pruning, "smoke", ["steps"])
    config = runner.make_config(random_pruning, "smoke", ["steps=7", "learning_rate=1", "widths=4"])
    assert config["steps"] == 7 and config["learning_rate"] == 1.0 and config["widths"] == [4]
    assert runner.main(["run", "random_pruning", "--set", "bogus=1"]) == 2  # a usage error, before the run


@pytest.mark.slow  # the default suite covers kill-and-resume in test_resume_exact.py[random_pruning]
def test_random_pruning_run_and_resume(tmp_path, monkeypatch):
    results = runner.run_experiment("random_pruning", "smoke", out=tmp_path / "a", overrides=TINY, quiet=True)
    rows = results["metrics"]["rows"]
    assert len(rows) == 2 * 3  # 2 widths x (dense + uniform + erk)
    assert {"model", "width", "distribution", "sparsity", "seed", "test_accuracy"} <= set(rows[0])
    for row in rows:
        assert row["measured_sparsity"] == pytest.approx(row["sparsity"], abs=2e-3)
    saved = json.loads((tmp_path / "a" / "results.json").read_text())
    assert saved["seed"] == 0 and "jax" in saved["versions"] and saved["wall_time_s"] > 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["config"]["steps"] == 20
    assert (tmp_path / "a" / "accuracy_gap.png").stat().st_size > 0

    calls = {"n": 0}
    real_fit = random_pruning.fit

    def dying_fit(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(random_pruning, "fit", dying_fit)
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiment("random_pruning", "smoke", out=tmp_path / "b", overrides=TINY, quiet=True)
    monkeypatch.setattr(random_pruning, "fit", real_fit)
    with pytest.raises(ValueError, match="differ"):
        runner.run_experiment("random_pruning", "smoke", out=tmp_path / "b", overrides=TINY + ["steps=21"],
                              resume=True, quiet=True)
    resumed = runner.run_experiment("random_pruning", "smoke", out=tmp_path / "b", overrides=TINY, resume=True,
                                    quiet=True)
    assert resumed["metrics"]["rows"] == rows
