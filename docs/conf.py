"""Sphinx configuration for the sparsejax API reference.

Why Sphinx (autodoc + napoleon + myst-nb) rather than mkdocs-material + mkdocstrings: the package
docstrings are written in reStructuredText (``literals``, :mod:/:func: roles), which autodoc renders
as intended and mkdocstrings would show as raw text; and autodoc imports the real objects, so the
re-exports in every package's ``__all__`` are documented where users import them. The build is offline:
no intersphinx, no theme assets from the network, and notebooks are rendered from their stored cells
without being executed (``nb_execution_mode = "off"``; tests/notebooks executes them).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (tests/docs runs the same).

Generated sources (under ``docs/generated/``, git-ignored, rewritten on every build):

* ``papers_table.md``: the README's paper table, between ``<!-- papers:start -->`` and
  ``<!-- papers:end -->`` (or, if those markers are absent, the whole "## Papers" section);
* ``notebooks/*.ipynb``: copies of ``notebooks/*.ipynb`` (Sphinx reads only files below ``docs/``),
  with links to ``../README.md#papers`` pointed at the docs' own paper page.
"""
from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "generated"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

from _helpers import write_generated_sources  # noqa: E402

project = "sparsejax"
author = "sparsejax contributors"
copyright = "sparsejax contributors"  # noqa: A001 (Sphinx's name)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "README.md", "_helpers.py", "generated/*.md", "**.ipynb_checkpoints"]
root_doc = "index"

# --- autodoc / napoleon -----------------------------------------------------------------------
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": False}
autodoc_typehints = "signature"
autodoc_inherit_docstrings = False  # flax/optax base-class docstrings are not ours to render
napoleon_google_docstring = True
napoleon_numpy_docstring = True
add_module_names = False

# --- myst / myst-nb ----------------------------------------------------------------------------
nb_execution_mode = "off"  # rendered as stored; execution is tested in tests/notebooks
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# --- html ---------------------------------------------------------------------------------------
html_theme = "furo"
html_title = "sparsejax"
html_static_path: list[str] = []

write_generated_sources(ROOT, GENERATED)

