"""`--record` (results/NAME/PRESET.json) and `report` (the generated README paper table)."""
import dataclasses
import json
import types

import pytest

from experiments import papers, runner


def _fake_module(name="fake_exp", papers_ids=("P4",), claim="Sparse nets match dense ones (P4)"):
    """A tiny experiment module that follows the reporting contract; no JAX work."""
    module = types.ModuleType(f"experiments.{name}")
    module.__doc__ = "A fake experiment for the runner tests."
    module.PRESETS = {"smoke": {"steps": 3, "lr": 0.1}, "full": {"steps": 30, "lr": 0.1}}
    module.PAPERS = papers_ids
    module.CLAIM = claim

    def run(config, ctx):
        curve = [1.0 / (t + 1) for t in range(500)]
        return {"accuracy": 0.5 + 0.01 * config["steps"], "loss_curve": curve,
                "rows": [{"method": "a", "acc": 0.6}, {"method": "b", "acc": 0.7}]}

    def summarize(results):
        m = results["metrics"]
        return f"acc {m['accuracy']:.2f} after {results['config']['steps']} steps (final loss {m['loss_curve']['last']:.4f})"

    module.run, module.summarize = run, summarize
    return module


@pytest.fixture
def fake(monkeypatch):
    module = _fake_module()
    real_load = runner.load
    monkeypatch.setattr(runner, "load", lambda name: module if name == "fake_exp" else real_load(name))
    return module


def test_compact_summarises_curves_and_arrays_and_keeps_rows():
    obj = {"curve": list(range(100)), "short": [1, 2, 3], "grid": [[float(i + j) for j in range(10)] for i in range(10)],
           "rows": [{"a": 1, "c": list(range(40))}] * 3, "names": ["x"] * 40, "flag": True}
    out = runner.compact(obj)
    assert out["curve"] == {"len": 100, "first": 0, "last": 99, "min": 0, "max": 99}
    assert out["short"] == [1, 2, 3] and out["names"] == ["x"] * 40 and out["flag"] is True
    assert out["grid"] == {"shape": [10, 10], "min": 0.0, "max": 18.0, "mean": 9.0}
    assert out["rows"][0]["a"] == 1 and out["rows"][0]["c"]["len"] == 40


def test_write_json_atomic_leaves_no_temporary_and_refuses_nan(tmp_path):
    path = runner.write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(ValueError, match="Out of range float"):
        runner.write_json_atomic(tmp_path / "x.json", {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}  # the old file survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_record_writes_small_committed_summary(tmp_path, fake):
    results = runner.run_experiment("fake_exp", "smoke", out=tmp_path / "run", quiet=True, record=True,
                                    results_dir=tmp_path / "results", overrides=["steps=4"])
    path = tmp_path / "results" / "fake_exp" / "smoke.json"
    record = json.loads(path.read_text())
    assert record["experiment"] == "fake_exp" and record["preset"] == "smoke" and record["seed"] == 0
    assert record["config"] == {"steps": 4, "lr": 0.1}
    assert record["metrics"]["accuracy"] == pytest.approx(0.54)
    assert record["metrics"]["loss_curve"] == {"len": 500, "first": 1.0, "last": 1 / 500, "min": 1 / 500, "max": 1.0}
    assert record["metrics"]["rows"][1] == {"method": "b", "acc": 0.7}
    assert record["wall_time_s"] >= 0 and record["date"].endswith("+00:00")
    assert set(record["git"]) == {"commit", "dirty"} and len(record["git"]["commit"]) == 40
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["backend"] == "cpu"
    assert record["versions"]["jax"] and record["versions"]["sparsejax"]
    assert "out_dir" not in record and path.stat().st_size < 4000
    assert len(results["metrics"]["loss_curve"]) == 500  # results.json itself is not compacted


def _readme(tmp_path, body="old table"):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n{papers.START}\n{body}\n{papers.END}\n\n## after\n")
    return readme


def test_report_generates_rows_from_records_and_check_detects_staleness(tmp_path, fake, capsys):
    other = _fake_module("other_exp", papers_ids=("P4", "P7"), claim="N:M decay beats SR-STE (P7)")
    modules = {"fake_exp": fake, "other_exp": other}
    results_dir = tmp_path / "results"
    runner.run_experiment("fake_exp", "smoke", out=tmp_path / "run", quiet=True, record=True, results_dir=results_dir)
    readme = _readme(tmp_path)

    assert runner.report(readme, results_dir, check=True, modules=modules) == 1
    assert "out of date" in capsys.readouterr().err
    assert runner.report(readme, results_dir, modules=modules) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n\n") and text.endswith(f"{papers.END}\n\n## after\n")
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| P")}
    assert len(rows) == len(papers.PAPERS) == 50
    p4 = rows["P4"].split(" | ")
    assert p4[3] == "`fake_exp`, `other_exp`"
    assert "`fake_exp` (smoke, " in p4[5] and "CPU backend" in p4[5] and "commit " in p4[5]
    assert "acc 0.53 after 3 steps (final loss 0.0020)" in p4[5]
    assert "`other_exp`: no recorded result" in p4[5]
    assert p4[6] == "Sparse nets match dense ones (P4)<br>N:M decay beats SR-STE (P7) |"
    p7 = rows["P7"].split(" | ")
    assert p7[5] == "no recorded result" and p7[3] == "`other_exp`"
    assert rows["P1"].split(" | ")[5] == "no recorded result"  # landed, but no experiment among these modules
    assert runner.report(readme, results_dir, check=True, modules=modules) == 0


def test_planned_paper_without_experiment_shows_a_dash(tmp_path, fake, monkeypatch):
    planned = dataclasses.replace(papers.PAPERS[0], status="planned")
    monkeypatch.setattr(papers, "PAPERS", (planned,) + papers.PAPERS[1:])
    readme = _readme(tmp_path)
    assert runner.report(readme, tmp_path / "results", modules={"fake_exp": fake}) == 0
    row = next(line for line in readme.read_text().splitlines() if line.startswith(f"| {planned.id} |"))
    assert row.split(" | ")[5] == "—"


def test_report_refuses_bad_contract_and_missing_markers(tmp_path, fake):
    results_dir = tmp_path / "results"
    runner.run_experiment("fake_exp", "smoke", out=tmp_path / "run", quiet=True, record=True, results_dir=results_dir)
    readme = _readme(tmp_path)
    bad = _fake_module(papers_ids=("P99",))
    with pytest.raises(ValueError, match="unknown paper id 'P99'"):
        runner.report(readme, results_dir, modules={"fake_exp": bad})
    bad = _fake_module()
    bad.summarize = lambda results: "a | b"
    with pytest.raises(ValueError, match=r"fake_exp.summarize\(...\) must be one markdown cell"):
        runner.report(readme, results_dir, modules={"fake_exp": bad})
    bad.summarize = lambda results: results["metrics"]["no_such_key"]
    with pytest.raises(ValueError, match="fake_exp.summarize failed on the 'smoke' record: KeyError"):
        runner.report(readme, results_dir, modules={"fake_exp": bad})
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="must contain <!-- papers:start -->"):
        runner.report(readme, results_dir, modules={"fake_exp": fake})


def test_modules_without_contract_still_list_and_run(tmp_path, monkeypatch, capsys):
    module = _fake_module()
    for attr in ("PAPERS", "CLAIM", "summarize"):
        delattr(module, attr)
    monkeypatch.setattr(runner, "load", lambda name: module)
    runner.run_experiment("fake_exp", "smoke", out=tmp_path / "run", quiet=True, record=True,
                          results_dir=tmp_path / "results")
    assert (tmp_path / "results" / "fake_exp" / "smoke.json").exists()
    readme = _readme(tmp_path)
    assert runner.report(readme, tmp_path / "results", modules={"fake_exp": module}) == 0
    assert "left out of the table): fake_exp" in capsys.readouterr().err


def test_paper_registry_is_complete():
    assert [p.id for p in papers.PAPERS] == [f"P{i}" for i in range(1, 51)]
    assert {p.status for p in papers.PAPERS} <= set(papers.STATUSES)
    with pytest.raises(ValueError, match="status must be one of"):
        papers.Paper("P0", "t", "m/", "finished")
    with pytest.raises(ValueError, match="valid ids: P1..P50"):
        papers.get("P51")


def test_readme_paper_table_is_up_to_date():
    """The committed README table equals what `report` generates from results/ and the modules."""
    assert runner.main(["report", "--check"]) == 0, "run `python -m experiments report` and commit README.md"


def test_every_experiment_follows_the_contract_and_is_recorded():
    """Issue #11's done-criterion: every experiment declares PAPERS/CLAIM/summarize and has a smoke record.

    Fails until the experiment owners have added the contract and committed results/NAME/smoke.json.
    """
    missing_contract, missing_record = [], []
    for name in runner.available():
        if not papers.follows_contract(runner.load(name)):
            missing_contract.append(name)
        if not runner.record_path(name, "smoke").exists():
            missing_record.append(name)
    assert not missing_contract, f"without PAPERS/CLAIM/summarize: {missing_contract}"
    assert not missing_record, f"without results/NAME/smoke.json: {missing_record}"
