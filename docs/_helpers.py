"""Helpers for docs/conf.py, kept importable without running a Sphinx build (tests/docs tests them)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

PAPERS_START, PAPERS_END = "<!-- papers:start -->", "<!-- papers:end -->"


def papers_section(readme: str) -> str:
    """The README text between the paper-table markers, or the whole "## Papers" section without them.

    Headings inside it are shifted so that the first level is H2 (the page itself is the H1).
    """
    if PAPERS_START in readme and PAPERS_END in readme:
        text = readme.split(PAPERS_START, 1)[1].split(PAPERS_END, 1)[0]
    else:
        match = re.search(r"^## Papers[ \t]*\n(.*?)(?=^## |\Z)", readme, flags=re.M | re.S)
        if match is None:
            raise RuntimeError("README.md has neither the paper-table markers nor a '## Papers' section")
        text = match.group(1)
    levels = [len(h) for h in re.findall(r"^(#+) ", text, flags=re.M)]
    if levels:
        shift = min(levels) - 2
        text = re.sub(r"^(#+) ", lambda m: "#" * max(2, len(m.group(1)) - shift) + " ", text, flags=re.M)
    return text.strip() + "\n"


def write_generated_sources(root: Path, generated: Path) -> None:
    """Write ``generated/``: the paper table from ``root/README.md`` and copies of ``root/notebooks``.

    Links to ``../README.md#papers`` in the notebooks are pointed at the docs' paper page.
    """
    generated.mkdir(exist_ok=True)
    readme = (root / "README.md").read_text(encoding="utf-8")
    (generated / "papers_table.md").write_text(papers_section(readme), encoding="utf-8")
    nb_dir = generated / "notebooks"
    shutil.rmtree(nb_dir, ignore_errors=True)
    nb_dir.mkdir()
    for src in sorted((root / "notebooks").glob("*.ipynb")):
        text = src.read_text(encoding="utf-8").replace("../README.md#papers", "../../papers.md")
        (nb_dir / src.name).write_text(text, encoding="utf-8")
