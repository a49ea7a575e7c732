"""Execute every notebook in notebooks/ top to bottom with its tiny (SMOKE) sizes; any cell error fails the test.

The kernel gets ``SPARSEJAX_NOTEBOOK_SMOKE=1`` (read by each notebook's parameters cell) and XLA flags that
turn off LLVM's expensive optimisations: compiling, not running, is what these tiny runs spend their time
on, and -O0 compiles several times faster on CPU. The first cell (Colab install) is a no-op here.
"""
import importlib.metadata
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
SMOKE_ENV = {
    "SPARSEJAX_NOTEBOOK_SMOKE": "1",
    "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    "JAX_PLATFORMS": "cpu",
}


def test_every_area_has_a_notebook():
    assert {p.stem for p in NOTEBOOKS} >= {"sparsity", "equivariance", "optimal_transport", "pde", "diffusion"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_states_its_papers_and_sizes(path):
    nb = nbformat.read(path, as_version=4)
    intro = nb.cells[0].source
    assert nb.cells[0].cell_type == "markdown" and "**Papers shown:**" in intro and "../README.md#papers" in intro
    setup, params = nb.cells[1].source, nb.cells[2].source
    assert "google.colab" in setup and "REPO_URL" in setup
    assert "SPARSEJAX_NOTEBOOK_SMOKE" in params and "parameters" in nb.cells[2].metadata.get("tags", [])


def _run_setup_cell_on_fake_colab(monkeypatch, tmp_path, repo_url, make_checkout):
    """Execute the Colab setup cell as if on Colab with sparsejax not installed; return the pip commands."""
    source = nbformat.read(NOTEBOOKS[0], as_version=4).cells[1].source
    checkout = tmp_path / "sparsejax"
    if make_checkout:
        checkout.mkdir(parents=True)
    source = source.replace('REPO_URL = ""', f"REPO_URL = {repo_url!r}", 1)
    source = source.replace('REPO_PATH = "/content/sparsejax"', f"REPO_PATH = {str(checkout)!r}", 1)
    google = types.ModuleType("google")
    google.colab = types.ModuleType("google.colab")
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google.colab)
    real_version = importlib.metadata.version

    def version(name):
        if name == "sparsejax":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    calls = []
    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    exec(compile(source, "setup-cell", "exec"), {})
    return calls, checkout


def test_colab_setup_cell_installs_from_checkout_or_url(monkeypatch, tmp_path):
    for notebook in NOTEBOOKS:   # the same cell everywhere, so one simulation covers all
        assert nbformat.read(notebook, as_version=4).cells[1].source == nbformat.read(NOTEBOOKS[0], as_version=4).cells[1].source
    calls, checkout = _run_setup_cell_on_fake_colab(monkeypatch, tmp_path / "a", "https://example.invalid/sj.git", True)
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", str(checkout)]]   # the checkout wins
    calls, _ = _run_setup_cell_on_fake_colab(monkeypatch, tmp_path / "b", "https://example.invalid/sj.git", False)
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", "sparsejax @ git+https://example.invalid/sj.git"]]
    with pytest.raises(RuntimeError, match="set REPO_URL"):
        _run_setup_cell_on_fake_colab(monkeypatch, tmp_path / "c", "", False)


def test_setup_cell_is_a_no_op_outside_colab(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    namespace = {}
    exec(compile(nbformat.read(NOTEBOOKS[0], as_version=4).cells[1].source, "setup-cell", "exec"), namespace)
    assert namespace["IN_COLAB"] is False and calls == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    for name, value in SMOKE_ENV.items():
        monkeypatch.setenv(name, value)   # inherited by the kernel process
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot rendered inline"
    assert any("JAX " in o.get("text", "") for o in outputs), "devices were not printed"
