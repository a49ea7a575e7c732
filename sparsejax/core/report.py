"""Per-leaf sparsity report: path, shape, size, nonzeros, density, and, for a sparsity type, the
multiply-accumulates a sparse kernel needs and the bytes of the compressed layout."""
from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from sparsejax.core.masks import apply_mask
from sparsejax.core.packed import pack_mask
from sparsejax.core.sparsity_types import Block, Channel, Group, NByM, Unstructured, parse_sparsity_type
from sparsejax.core.tree import leaves_with_paths
from sparsejax.core.validation import check_int


def _index_bytes(count: int, bits: int) -> int:
    return (count * bits + 7) // 8


def compressed_nbytes(arr: np.ndarray, stype, value_bytes: int | None = None) -> int:
    """Exact bytes of ``arr``'s non-zeros in the natural compressed layout of ``stype``:

    * unstructured: CSR over the 2-D view ``(prod(shape[:-1]), shape[-1])``: values, column indices
      (``ceil(log2(cols))`` bits each, packed) and ``rows + 1`` int32 row pointers;
    * N:M: ``size * n / m`` values plus ``ceil(log2(m))``-bit positions (the 2:4 hardware metadata);
    * block ``(r, c)``: kept blocks' values plus one int32 block-column index per kept block and
      int32 block-row pointers (BSR);
    * channel: the kept channels densely plus an int32 index per kept channel;
    * group ``g``: kept groups' values plus one ``ceil(log2(K/g))``-bit group index per kept group.

    ``value_bytes`` defaults to the array's itemsize.
    """
    if value_bytes is not None:
        check_int("value_bytes", value_bytes, minimum=1)
    arr = np.asarray(arr)
    vb = arr.dtype.itemsize if value_bytes is None else int(value_bytes)
    nnz_mask = arr != 0
    stype = parse_sparsity_type(stype)
    if arr.ndim < 2:
        return int(nnz_mask.sum()) * vb
    if isinstance(stype, NByM):
        count = arr.size * stype.n // stype.m
        return count * vb + _index_bytes(count, max(1, math.ceil(math.log2(stype.m))))
    if isinstance(stype, Block):
        r, c = stype.block_shape
        units = np.asarray(stype.unit_mask(nnz_mask))
        kept = int(units.sum())
        rows = int(np.prod(units.shape[:-1]))
        return kept * r * c * vb + kept * 4 + (rows + 1) * 4
    if isinstance(stype, Channel):
        units = np.asarray(stype.unit_mask(nnz_mask))
        per = arr.size // arr.shape[stype.axis]
        return int(units.sum()) * per * vb + int(units.sum()) * 4
    if isinstance(stype, Group):
        units = np.asarray(stype.unit_mask(nnz_mask))
        groups = arr.shape[stype.axis] // stype.g
        return int(units.sum()) * stype.g * vb + _index_bytes(int(units.sum()), max(1, math.ceil(math.log2(groups))))
    rows, cols = int(np.prod(arr.shape[:-1])), arr.shape[-1]
    nnz = int(nnz_mask.sum())
    return nnz * vb + _index_bytes(nnz, max(1, math.ceil(math.log2(cols)))) + (rows + 1) * 4


def _macs(shape, nnz: int, stype, density: float) -> int:
    """Multiply-accumulates per output position of an ideal kernel that skips pruned units."""
    size = int(np.prod(shape))
    if isinstance(stype, NByM):
        return size * stype.n // stype.m if density <= stype.n / stype.m + 1e-12 else nnz
    return nnz


@dataclasses.dataclass(frozen=True)
class Report:
    """Rows (one dict per leaf) and totals; ``str(report)`` is a printable table."""

    rows: list[dict]

    def __post_init__(self):
        if not isinstance(self.rows, list) or not all(isinstance(r, dict) for r in self.rows):
            raise TypeError(f"rows must be a list of dicts, got {type(self.rows).__name__}")

    @property
    def total(self) -> dict:
        """Totals over all leaves: size, nonzeros, density (and dense/sparse MACs and bytes when present)."""
        size = sum(r["size"] for r in self.rows)
        nnz = sum(r["nonzeros"] for r in self.rows)
        out = {"size": size, "nonzeros": nnz, "density": nnz / max(size, 1)}
        for key in ("dense_macs", "sparse_macs", "dense_bytes", "compressed_bytes", "bitmap_bytes"):
            if self.rows and key in self.rows[0]:
                out[key] = sum(r[key] for r in self.rows)
        return out

    def as_dicts(self) -> list[dict]:
        """The rows as plain dicts (JSON-able)."""
        return [dict(r) for r in self.rows]

    def __str__(self) -> str:
        width = max([len("path")] + [len(r["path"]) for r in self.rows])
        extra = bool(self.rows) and "sparse_macs" in self.rows[0]
        head = f"{'path':<{width}}  {'shape':>16}  {'size':>9}  {'nonzeros':>9}  {'density':>7}"
        if extra:
            head += f"  {'MACs':>9}  {'bytes':>9}"
        lines = [head]
        for r in self.rows:
            line = (f"{r['path']:<{width}}  {str(r['shape']):>16}  {r['size']:>9d}  "
                    f"{r['nonzeros']:>9d}  {r['density']:>7.4f}")
            if extra:
                line += f"  {r['sparse_macs']:>9d}  {r['compressed_bytes']:>9d}"
            lines.append(line)
        t = self.total
        last = f"{'total':<{width}}  {'':>16}  {t['size']:>9d}  {t['nonzeros']:>9d}  {t['density']:>7.4f}"
        if extra:
            last += f"  {t['sparse_macs']:>9d}  {t['compressed_bytes']:>9d}"
        lines.append(last)
        return "\n".join(lines)


def report(params, mask=None, *, sparsity_type=None, value_bytes: int | None = None) -> Report:
    """Per-leaf table of the (masked, if ``mask`` is given) params' nonzeros and density.

    With ``sparsity_type`` every leaf of ndim >= 2 also gets ``dense_macs`` / ``sparse_macs`` (per
    output position: ``size`` and the multiplies an ideal kernel of that type needs; for N:M the
    hardware always does ``n/m`` of the work) and ``dense_bytes`` / ``compressed_bytes``
    (:func:`compressed_nbytes`), and ``bitmap_bytes``: the non-zero values plus the mask as packed
    bits (:func:`sparsejax.pack_mask`, ``uint8`` words), a layout that fits any sparsity type.
    Leaves that do not have the type's structure raise."""
    if value_bytes is not None:
        check_int("value_bytes", value_bytes, minimum=1)
    if mask is not None:
        params = apply_mask(params, mask)
    stype = None if sparsity_type is None else parse_sparsity_type(sparsity_type)
    rows = []
    for path, leaf in leaves_with_paths(jax.device_get(params)):
        arr = np.asarray(leaf)
        nnz = int(np.count_nonzero(arr))
        row = {"path": path, "shape": tuple(arr.shape), "size": int(arr.size), "nonzeros": nnz,
               "density": nnz / max(arr.size, 1)}
        if stype is not None:
            structured = arr.ndim >= 2 and not isinstance(stype, Unstructured)
            if structured:
                try:
                    stype.check(arr.shape, where=f"params leaf {path!r}")
                except ValueError:
                    structured = False
            leaf_type = stype if structured else Unstructured()
            if structured and not stype.holds(arr != 0) and not isinstance(stype, NByM):
                raise ValueError(f"params leaf {path!r} does not have the structure {stype!r}")
            row["dense_macs"] = int(arr.size)
            row["sparse_macs"] = _macs(arr.shape, nnz, leaf_type, row["density"])
            row["dense_bytes"] = int(arr.nbytes if value_bytes is None else arr.size * value_bytes)
            row["compressed_bytes"] = compressed_nbytes(arr, leaf_type, value_bytes) if arr.ndim >= 2 else \
                row["dense_bytes"]
            vb = arr.dtype.itemsize if value_bytes is None else int(value_bytes)
            row["bitmap_bytes"] = nnz * vb + pack_mask(arr != 0).nbytes
        rows.append(row)
    return Report(rows)
