"""Per-leaf sparsity report: path, shape, size, nonzeros, density."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from sparsejax.core.masks import apply_mask
from sparsejax.core.tree import leaves_with_paths


@dataclasses.dataclass(frozen=True)
class Report:
    """Rows (one dict per leaf) and totals; ``str(report)`` is a printable table."""

    rows: list[dict]

    @property
    def total(self) -> dict:
        """Totals over all leaves: size, nonzeros, density."""
        size = sum(r["size"] for r in self.rows)
        nnz = sum(r["nonzeros"] for r in self.rows)
        return {"size": size, "nonzeros": nnz, "density": nnz / max(size, 1)}

    def as_dicts(self) -> list[dict]:
        """The rows as plain dicts (JSON-able)."""
        return [dict(r) for r in self.rows]

    def __str__(self) -> str:
        width = max([len("path")] + [len(r["path"]) for r in self.rows])
        lines = [f"{'path':<{width}}  {'shape':>16}  {'size':>9}  {'nonzeros':>9}  {'density':>7}"]
        for r in self.rows:
            lines.append(f"{r['path']:<{width}}  {str(r['shape']):>16}  {r['size']:>9d}  "
                         f"{r['nonzeros']:>9d}  {r['density']:>7.4f}")
        t = self.total
        lines.append(f"{'total':<{width}}  {'':>16}  {t['size']:>9d}  {t['nonzeros']:>9d}  {t['density']:>7.4f}")
        return "\n".join(lines)


def report(params, mask=None) -> Report:
    """Per-leaf table of the (masked, if ``mask`` is given) params' nonzeros and density."""
    if mask is not None:
        params = apply_mask(params, mask)
    rows = []
    for path, leaf in leaves_with_paths(jax.device_get(params)):
        arr = np.asarray(leaf)
        nnz = int(np.count_nonzero(arr))
        rows.append({"path": path, "shape": tuple(arr.shape), "size": int(arr.size), "nonzeros": nnz,
                     "density": nnz / max(arr.size, 1)})
    return Report(rows)
