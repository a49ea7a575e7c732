"""notebooks/ponita.ipynb executes top to bottom (the lead's suite runs every notebook too)."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "ponita.ipynb"


@pytest.mark.slow
def test_ponita_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parents[1])}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "icosahedral" in outputs and "vector equivariance error" in outputs
