"""The API reference builds offline with warnings as errors, with every area, the paper table and the notebooks."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
API_PAGES = ["core", "structured", "quant", "kernels", "pruning", "train", "data", "nn", "llm", "moe", "sae", "regularizers", "nas",
             "algorithms", "sketch", "recovery", "retrieval", "graphs", "clustering", "lipschitz", "compat", "metric",
             "porous", "ponita", "lie", "spe", "ot", "lightsb", "pde", "diffusion", "reconstruction"]


def _helpers():
    spec = importlib.util.spec_from_file_location("docs_helpers", DOCS / "_helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_papers_section_prefers_markers_and_falls_back_to_the_section():
    h = _helpers()
    marked = "# t\n## Papers\nintro\n<!-- papers:start -->\n| P1 | x |\n### Scale\nmore\n<!-- papers:end -->\n## Layout\n"
    assert h.papers_section(marked) == "| P1 | x |\n## Scale\nmore\n"   # H3 shifted to H2
    unmarked = "# t\n## Papers\nintro\n| P1 | x |\n### Scale\nmore\n## Layout\nnot this\n"
    assert h.papers_section(unmarked) == "intro\n| P1 | x |\n## Scale\nmore\n"
    with pytest.raises(RuntimeError, match="neither the paper-table markers"):
        h.papers_section("# t\n## Layout\n")


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for page in API_PAGES:
        assert (out / "api" / f"{page}.html").is_file(), page
    # docstrings are really rendered, where users import the names from
    core = (out / "api" / "core.html").read_text(encoding="utf-8")
    assert 'id="sparsejax.core.erk_densities"' in core
    assert 'id="generative.pde.LSM"' in (out / "api" / "pde.html").read_text(encoding="utf-8")
    # the README's paper table, and every notebook as a page
    papers = (out / "papers.html").read_text(encoding="utf-8")
    assert "P4" in papers and "Unreasonable Effectiveness" in papers
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert (out / "generated" / "notebooks" / f"{nb.stem}.html").is_file(), nb.name
