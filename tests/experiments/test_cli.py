"""The CLI fails cleanly: every bad command line is a one-line error (exit 2) before anything runs;
failures inside a run exit 1 without being dressed up as usage errors."""
import json
import os
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

import experiments.random_pruning as random_pruning
from experiments import runner
from sparsejax.train import tracking

ROOT = Path(__file__).resolve().parents[2]


def _fake(run=None):
    module = types.ModuleType("experiments.fake_exp")
    module.__doc__ = "Fake experiment."
    module.PRESETS = {
        "smoke": {"steps": 3, "lr": 0.1, "name": "a", "flag": False, "sizes": [1, 2], "rates": [0.5],
                  "model": {"width": 8, "act": "relu"}, "shift": -1.0, "every": 0},
        "full": {"steps": 30, "lr": 1, "name": "b", "flag": True, "sizes": [4], "rates": [0.1, 0.2],
                 "model": {"width": 64, "act": "gelu"}, "shift": 2.0, "every": 10},
    }
    module.calls = []

    def default_run(config, ctx):
        module.calls.append(config)
        tracking.log_scalars(0, {"loss": 2.0}, prefix="m")
        tracking.log_scalars(1, {"loss": 1.0}, prefix="m")
        return {"loss": 1.0}

    module.run = run or default_run
    return module


@pytest.fixture
def fake(monkeypatch):
    module = _fake()
    real = runner.load
    monkeypatch.setattr(runner, "load", lambda name: module if name == "fake_exp" else real(name))
    return module


@pytest.fixture
def no_training(monkeypatch):
    """random_pruning must never start: every case below has to fail before the run."""
    def forbidden(config, ctx):
        raise AssertionError("the run started although the command line was invalid")

    monkeypatch.setattr(random_pruning, "run", forbidden)


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("item, message", [
    ("steps=abc", "--set steps: expected an int, got 'abc'"),
    ("steps=1.5", "--set steps: expected an int, got '1.5'"),
    ("steps=true", "--set steps: expected an int, got 'true'"),
    ('steps="10"', "--set steps: expected an int, got '\"10\"'"),
    ("steps=0", "--set steps: expected an int >= 1, got '0'"),
    ("steps=-5", "--set steps: expected an int >= 1, got '-5'"),
    ("learning_rate=abc", "--set learning_rate: expected a finite number, got 'abc'"),
    ("learning_rate=-1", "--set learning_rate: expected a finite number >= 0, got '-1'"),
    ("learning_rate=NaN", "--set learning_rate: expected a finite number, got 'NaN' (not finite)"),
    ("sparsities=[]", "--set sparsities: expected a non-empty list, got '[]'"),
    ("seeds=[]", "--set seeds: expected a non-empty list, got '[]'"),
    ('sparsities=["a"]', "--set sparsities (each element): expected a finite number, got '\"a\"'"),
    ("widths=[1.5]", "--set widths (each element): expected an int, got '1.5'"),
    ("checkpoint_every=-1", "--set checkpoint_every: expected an int >= 0, got '-1'"),
    ("stepz=10", "unknown config key 'stepz'; valid keys: batch_size, checkpoint_every"),
    ("steps", "--set expects key=value, got 'steps'"),
    ("steps.x=1", "unknown config key 'steps.x': steps is not a nested config"),
])
def test_bad_set_values_are_one_line_usage_errors(item, message, no_training, capsys, tmp_path):
    assert runner.main(["run", "random_pruning", "--out", str(tmp_path / "o"), "--set", item]) == 2
    err = _err(capsys)
    assert err.startswith(f"python -m experiments: error: {message}"), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, message", [
    (["run", "random_prunning"], "unknown experiment 'random_prunning'; valid experiments: "),
    (["run", "random_pruning", "--preset", "tiny"], "unknown preset 'tiny'; valid presets: smoke, full"),
    (["run", "random_pruning", "--seed", "-1"], "--seed: expected an int >= 0, got -1"),
    (["run", "random_pruning", "--out", "/proc/forbidden/run"], "--out /proc/forbidden/run cannot be created"),
    (["run", "random_pruning", "--resume", "--out", "{tmp}/empty"], "--resume: no earlier run in {tmp}/empty"),
    (["run", "random_pruning", "--out", "{tmp}/file/run"], "--out {tmp}/file/run: a parent path is a file"),
    (["run", "random_pruning", "--out", "{tmp}/file"], "--out {tmp}/file: exists and is not a directory"),
])
def test_bad_run_arguments_fail_before_the_run(argv, message, no_training, capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert runner.main(argv) == 2
    assert message.replace("{tmp}", str(tmp_path)) in _err(capsys)


def test_resume_without_any_earlier_run(no_training, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.main(["run", "random_pruning", "--resume"]) == 2
    assert "--resume: no earlier run of 'random_pruning' under runs/random_pruning" in _err(capsys)


def test_show_prints_the_resolved_config_with_nested_keys(fake, capsys):
    assert runner.main(["show", "fake_exp", "--preset", "full", "--set", "model.width=32", "--set", "lr=2"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["model"] == {"width": 32, "act": "gelu"} and config["lr"] == 2.0 and config["steps"] == 30
    assert runner.main(["show", "fake_exp", "--set", "model.width=wide"]) == 2
    assert _err(capsys).endswith("--set model.width: expected an int, got 'wide'")
    assert runner.main(["show", "fake_exp", "--set", "model.depth=2"]) == 2
    assert "unknown config key 'model.depth' (model has no 'depth'); valid keys: model.act, model.width" in _err(capsys)
    assert runner.main(["show", "random_pruning"]) == 0
    assert json.loads(capsys.readouterr().out) == random_pruning.PRESETS["smoke"]


def test_set_types_follow_the_presets(fake):
    config = runner.make_config(fake, "smoke", ["flag=true", "name=123", "sizes=7", "rates=[1, 0.25]", "shift=-3",
                                                "every=0", 'model={"width": 4}'])
    assert config["flag"] is True and config["name"] == "123" and config["sizes"] == [7]
    assert config["rates"] == [1.0, 0.25] and isinstance(config["rates"][0], float)
    assert config["shift"] == -3.0 and config["every"] == 0 and config["model"] == {"width": 4, "act": "relu"}
    with pytest.raises(runner.UsageError, match=r"--set flag: expected true or false, got '1'"):
        runner.make_config(fake, "smoke", ["flag=1"])
    with pytest.raises(runner.UsageError, match=r"--set model.width: expected an int >= 1, got '0'"):
        runner.make_config(fake, "smoke", ["model.width=0"])
    fake.CONFIG_RANGES = {"lr": (0.0, 1.0)}
    with pytest.raises(runner.UsageError, match=r"--set lr: expected a finite number in \[0.0, 1.0\], got '2'"):
        runner.make_config(fake, "smoke", ["lr=2"])
    fake.check_config = lambda config: (_ for _ in ()).throw(ValueError("name must be a or b"))
    with pytest.raises(runner.UsageError, match="invalid config: name must be a or b"):
        runner.make_config(fake, "smoke", [])


def test_a_failure_inside_the_run_is_not_a_usage_error(monkeypatch, tmp_path, capsys):
    def broken(config, ctx):
        raise ValueError("cannot reshape array deep inside")

    module = _fake(run=broken)
    monkeypatch.setattr(runner, "load", lambda name: module)
    assert runner.main(["run", "fake_exp", "--out", str(tmp_path / "a")]) == 1
    err = _err(capsys)
    assert err == ("python -m experiments: error: ValueError: cannot reshape array deep inside "
                   "(--traceback shows where)")
    assert "usage:" not in err and not (tmp_path / "a" / "results.json").exists()
    with pytest.raises(ValueError, match="deep inside"):
        runner.main(["run", "fake_exp", "--out", str(tmp_path / "b"), "--traceback"])


def test_fresh_run_refuses_a_used_directory_and_resume_checks_config(fake, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert runner.main(["run", "fake_exp", "--out", out, "--quiet"]) == 0
    assert runner.main(["run", "fake_exp", "--out", out, "--quiet"]) == 2
    assert "already holds a run (config.json or checkpoints/); a fresh run never reuses it" in _err(capsys)
    assert runner.main(["run", "fake_exp", "--out", out, "--resume", "--set", "lr=0.3"]) == 2
    assert _err(capsys).endswith(f"--resume: config or seed differ from the run in {out} (lr)")
    assert runner.main(["run", "fake_exp", "--out", out, "--resume", "--seed", "1"]) == 2
    assert _err(capsys).endswith("(seed)")
    assert runner.main(["run", "fake_exp", "--out", out, "--resume", "--quiet"]) == 0
    assert len(fake.calls) == 2
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["fingerprint"]
    assert saved["config"] == fake.calls[0] and saved["seed"] == 0 and saved["code"]["source"] == runner.source_hash()


def test_resume_refuses_other_code(fake, tmp_path, capsys):
    out = tmp_path / "run"
    assert runner.main(["run", "fake_exp", "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    config["fingerprint"]["code"]["source"] = "0" * 16
    (out / "config.json").write_text(json.dumps(config))
    assert runner.main(["run", "fake_exp", "--out", str(out), "--resume"]) == 2
    assert "was written by other code (source hash 0000000000000000 vs " in _err(capsys)


def test_lock_refuses_a_live_run_and_takes_over_a_stale_one(fake, tmp_path, capsys):
    import platform

    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(f"{platform.node()}:{os.getppid()}")  # a live process
    assert runner.main(["run", "fake_exp", "--out", str(out)]) == 2
    assert "is in use by another run" in _err(capsys) and not fake.calls
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(f"{platform.node()}:{dead.pid}")
    assert runner.main(["run", "fake_exp", "--out", str(out), "--quiet"]) == 0
    assert not (out / ".lock").exists() and len(fake.calls) == 1


def test_tensorboard_event_files_land_in_the_run_directory(fake, tmp_path):
    runner.run_experiment("fake_exp", out=tmp_path / "run", quiet=True)
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    assert tracking.read_scalars(tmp_path / "run") == {"m/loss": [(0, 2.0), (1, 1.0)]}
    runner.run_experiment("fake_exp", out=tmp_path / "none", quiet=True, tracker="none")
    assert not list((tmp_path / "none").glob("events.out.tfevents.*"))


def test_wandb_tracker_without_wandb_is_a_one_line_error(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    assert runner.main(["run", "fake_exp", "--out", str(tmp_path / "run"), "--tracker", "wandb"]) == 2
    assert _err(capsys) == ("python -m experiments: error: --tracker wandb needs wandb, which is not installed: "
                            "pip install 'sparsejax[wandb]' (or use --tracker tensorboard)")
    assert not fake.calls


def test_wandb_tracker_logs_offline(fake, tmp_path, monkeypatch):
    """With wandb installed: an offline run folder with the logged history. Without: the clear error."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        with pytest.raises(runner.UsageError, match="--tracker wandb needs wandb"):
            runner.run_experiment("fake_exp", out=tmp_path / "run", quiet=True, tracker="wandb")
        return
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    runner.run_experiment("fake_exp", out=tmp_path / "run", quiet=True, tracker="wandb")
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    assert tracking.read_scalars(tmp_path / "run") == {"m/loss": [(0, 2.0), (1, 1.0)]}  # TensorBoard too


def test_nonfinite_metrics_are_refused_unless_allowed(monkeypatch, tmp_path, capsys):
    module = _fake(run=lambda config, ctx: {"rows": [{"mae": 0.5}, {"mae": float("nan")}], "best": "none",
                                             "curve": [1.0, float("inf")]})
    monkeypatch.setattr(runner, "load", lambda name: module)
    assert runner.main(["run", "fake_exp", "--out", str(tmp_path / "a"), "--quiet"]) == 1
    err = _err(capsys)
    assert "returned non-finite metrics (metrics.rows[1].mae, metrics.curve[1]); not written as results" in err
    assert not (tmp_path / "a" / "results.json").exists()
    assert runner.main(["run", "fake_exp", "--out", str(tmp_path / "b"), "--quiet", "--allow-nonfinite"]) == 0
    saved = json.loads((tmp_path / "b" / "results.json").read_text())
    assert saved["metrics"]["rows"][1]["mae"] == "nan" and saved["allow_nonfinite"] is True


def test_console_script_is_declared_and_offers_the_same_commands(capsys):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["sparsejax"] == "experiments.runner:cli"
    assert "wandb" in project["optional-dependencies"] and not any("wandb" in d for d in project["dependencies"])
    assert runner.main(["list"], prog="sparsejax") == 0
    assert "random_pruning" in capsys.readouterr().out
    assert runner.main(["run", "random_pruning", "--set", "steps=abc"], prog="sparsejax") == 2
    assert _err(capsys) == "sparsejax: error: --set steps: expected an int, got 'abc'"
    with pytest.raises(SystemExit) as exc:
        runner.build_parser("sparsejax").parse_args(["--help"])
    assert exc.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: sparsejax") and "{list,show,run,report}" in usage


def test_real_process_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments", "run", "random_pruning", "--out", str(tmp_path / "o"),
                           "--set", "steps=abc"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "python -m experiments: error: --set steps: expected an int, got 'abc'"
    assert not (tmp_path / "o").exists()
