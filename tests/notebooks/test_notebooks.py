"""Execute every notebook in notebooks/ top to bottom with its tiny (SMOKE) sizes; any cell error fails the test.

The kernel gets ``SPARSEJAX_NOTEBOOK_SMOKE=1`` (read by each notebook's parameters cell) and XLA flags that
turn off LLVM's expensive optimisations: compiling, not running, is what these tiny runs spend their time
on, and -O0 compiles several times faster on CPU. The first cell (Colab install) is a no-op here.
"""
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
