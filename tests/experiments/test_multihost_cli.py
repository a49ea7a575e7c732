"""``python -m experiments run`` on several processes (issue #19): process 0 alone checks the run
directory, holds the lock and writes every file; the others run quietly and write nothing but their
part of the orbax checkpoints. The default tests fake the process index; the slow one launches 2
real processes over loopback (gloo) and compares with a single-process run."""
import json
import types

import jax
import pytest

from experiments import papers, runner
from sparsejax.train.distributed import process_strings
from sparsejax.train.tracking import log_scalars

PRESETS = {"smoke": {"steps": 3, "scale": 0.5}, "full": {"steps": 5, "scale": 0.5}}


def _fake_run(config, ctx):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for t in range(config["steps"]):
        log_scalars(t, {"loss": config["scale"] * t})
    ctx.log("fake: running")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    ctx.save_figure(fig, "curve.png")
    return {"total": config["scale"] * config["steps"], "seed": ctx.seed}


@pytest.fixture
def fake(monkeypatch):
    module = types.ModuleType("experiments.fake_multihost")
    module.PRESETS, module.run = PRESETS, _fake_run
    module.PAPERS, module.CLAIM = ("P0",), "a fake"
    module.summarize = lambda record: f"total {record['metrics']['total']}"
    real_load = runner.load
    monkeypatch.setattr(runner, "load", lambda name: module if name == "fake_multihost" else real_load(name))
    return module


def _files(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_single_process_writes_everything_and_other_processes_write_nothing(fake, tmp_path, monkeypatch, capsys):
    kwargs = dict(overrides=["steps=4"], seed=3, record=True)
    one = runner.run_experiment("fake_multihost", out=tmp_path / "p0", results_dir=tmp_path / "rec0", **kwargs)
    files = _files(tmp_path / "p0")
    assert {"config.json", "results.json", "curve.png"} <= set(files)
    assert any(f.startswith("events.out.tfevents") for f in files) and ".lock" not in files
    assert _files(tmp_path / "rec0") == ["fake_multihost/smoke.json"]
    assert json.loads((tmp_path / "p0" / "results.json").read_text())["metrics"] == {"total": 2.0, "seed": 3}
    machine = one["machine"]
    assert machine["process_count"] == 1 and machine["host_count"] == 1
    assert machine["local_device_count"] == machine["device_count"] == jax.device_count()
    assert "processes" not in papers.machine_text(one)  # the single-host README text is unchanged
    assert "done in" in capsys.readouterr().out

    monkeypatch.setattr(jax, "process_index", lambda *a: 1)  # process 1 of a (pretend) multi-process run
    other = runner.run_experiment("fake_multihost", out=tmp_path / "p1", results_dir=tmp_path / "rec1", **kwargs)
    assert other["metrics"] == one["metrics"] and other["out_dir"] == str(tmp_path / "p1")
    assert not (tmp_path / "p1").exists() and not (tmp_path / "rec1").exists()
    assert capsys.readouterr().out == ""  # quiet: only process 0 prints


def test_process_strings_and_machine_text_of_a_multi_process_record():
    assert process_strings("héllo") == ["héllo"]
    with pytest.raises(TypeError):
        process_strings(3)
    record = {"preset": "smoke", "machine": {"cpu_count": 16, "backend": "gpu", "device_kind": "H100",
                                             "device_count": 16, "process_count": 2, "host_count": 2}}
    assert papers.machine_text(record) == "smoke, 16 CPUs, 16× H100, 2 processes on 2 hosts"


def test_incomplete_distributed_environment_is_a_usage_error(fake, monkeypatch, capsys):
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    assert runner.main(["run", "fake_multihost"]) == 2
    assert "missing ['JAX_NUM_PROCESSES', 'JAX_PROCESS_ID']" in capsys.readouterr().err


TINY = ['models=["mlp"]', "widths=[1]", "sparsities=[0.5]", 'distributions=["uniform","erk"]', "steps=20",
        "checkpoint_every=10", "batch_size=32"]


@pytest.mark.slow
def test_two_processes_run_an_experiment_write_once_and_match_one_process(tmp_path):
    """random_pruning does not shard its data: each process trains the same replicated model on its
    own devices, and every process takes part in the orbax checkpoints (saved, then restored by
    ``--resume``). The metrics must equal the single-process run exactly."""
    from sparsejax.train.multihost_check import launch_processes

    single = runner.run_experiment("random_pruning", out=tmp_path / "single", overrides=TINY, quiet=True,
                                   tracker="none")
    out = tmp_path / "multi"
    cmd = ["-m", "experiments", "run", "random_pruning", "--out", str(out), "--traceback"]
    for item in TINY:
        cmd += ["--set", item]
    done = launch_processes(cmd, 2, devices_per_process=2, timeout=600)
    for p in done:
        assert p.returncode == 0, p.stderr[-3000:]
    printed = [[line for line in p.stdout.splitlines() if not line.startswith("[Gloo]")] for p in done]
    assert any("2 processes on 1 host(s), 4 devices" in line for line in printed[0]) and printed[1] == []
    files = _files(out)
    assert files.count("results.json") == 1 and "config.json" in files and ".lock" not in files
    assert len([f for f in files if "tfevents" in f]) == 1 and "accuracy_gap.png" in files
    assert len((out / "rows.jsonl").read_text().splitlines()) == 3  # dense, uniform, erk: written once
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert len(ckpts) == 3 and all((out / "checkpoints" / c / "20" / "commit_success.txt").exists() for c in ckpts)
    multi = json.loads((out / "results.json").read_text())
    assert multi["machine"]["process_count"] == 2 and multi["machine"]["device_count"] == 4
    assert multi["machine"]["local_device_count"] == 2
    assert multi["metrics"] == single["metrics"]

    # --resume from every process: the rows are re-trained from the restored step-20 checkpoints
    (out / "rows.jsonl").unlink()
    done = launch_processes(cmd + ["--resume"], 2, devices_per_process=2, timeout=600)
    for p in done:
        assert p.returncode == 0, p.stderr[-3000:]
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["metrics"] == multi["metrics"]
