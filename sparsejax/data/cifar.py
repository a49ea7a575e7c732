"""Loader for the CIFAR-10 python-pickle format from a local directory (never downloads)."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from sparsejax.data.digits import Split
from sparsejax.core.validation import check_type

_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = ["test_batch"]


def _read_batches(root: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in names:
        path = root / name
        if not path.exists():
            continue
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
        if data is None or labels is None:
            raise ValueError(f"{path} is not a CIFAR-10 pickle batch (needs 'data' and 'labels')")
        xs.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(labels, dtype=np.int32))
    if not xs:
        raise FileNotFoundError(f"none of {names} found in {root}")
    return np.concatenate(xs), np.concatenate(ys)


def load_cifar10(directory: str | Path) -> Split:
    """Read ``cifar-10-batches-py`` from ``directory``: images ``(N, 32, 32, 3)`` in [0, 1].

    Missing train batches are skipped (so a partial copy works); at least one train batch and
    ``test_batch`` must exist.
    """
    check_type("directory", directory, (str, os.PathLike), "path (str or os.PathLike)")
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory {root} does not exist (this loader never downloads)")
    x_tr, y_tr = _read_batches(root, _TRAIN)
    x_te, y_te = _read_batches(root, _TEST)
    scale = np.float32(1.0 / 255.0)
    return Split(x_tr.astype(np.float32) * scale, y_tr, x_te.astype(np.float32) * scale, y_te)
