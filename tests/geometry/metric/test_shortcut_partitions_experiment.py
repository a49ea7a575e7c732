"""experiments/shortcut_partitions (P16): a tiny end-to-end run gives every row, the cover arms and a summary."""
from experiments import shortcut_partitions
from experiments.runner import RunContext


def test_shortcut_partitions_tiny_run(tmp_path):
    cfg = {"families": ["grid", "expander"], "ns": [16, 36, 64], "eps": [0.5], "seeds": [0], "cover_n": 36,
           "tree_ns": [36], "tree_eps": [0.5], "spr_n": 64, "spr_k": [4, 10],
           "buffer_n": 36, "buffer_eps": [0.5]}
    out = shortcut_partitions.run(cfg, RunContext("shortcut_partitions", tmp_path, 0, quiet=True))
    assert len(out["rows"]) == 6 and (tmp_path / "shortcut_partitions.png").is_file()
    assert sum("cover" in r for r in out["rows"]) == 2
    for r in out["rows"]:
        assert r["shortcut"]["connected"] and r["shortcut"]["strong_diam_ratio"] <= 1 + 1e-9
        assert r["shortcut"]["hop_ratio_max"] >= 1
    assert out["summary"]["grid"]["per_eps"]["0.5"]["hop_max_slope"] is not None
    text = shortcut_partitions.summarize({"metrics": out, "config": cfg})
    assert len(out["tree_rows"]) == 2 and len(out["spr_rows"]) == 4
    assert all(r["stretch_max"] <= 1 + 4 * 0.5 + 1e-9 for r in out["tree_rows"])
    assert all(r["shortcut"] >= 1 and r["voronoi"] >= 1 for r in out["spr_rows"])
    assert sum("buffered" in r for r in out["rows"]) == 2
    assert all(r["buffered"]["buffer_violations"] == 0 for r in out["rows"] if "buffered" in r)
    assert "Steiner point removal" in text and "buffered" in text and "tree cover" in text
    assert "strong diameter <= eps*Delta: yes" in text and "expander" in text and "|" not in text
