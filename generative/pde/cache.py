"""A local on-disk cache for generated PDE datasets (``data_cache/pde/`` by default, gitignored).

The file name spells out the generator name and every generator parameter, so changing any
parameter (resolution, sample count, viscosity, seed, ...) produces a new file and a cached file
is never silently reused for a different configuration.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from sparsejax.core.validation import check_callable

DEFAULT_DATA_DIR = Path("data_cache") / "pde"


_SAFE = re.compile(r"[A-Za-z0-9_.+-]+")


def cache_path(name: str, params: dict, data_dir: str | Path = DEFAULT_DATA_DIR) -> Path:
    """Path ``data_dir/name_key1-v1_key2-v2....npz`` with keys in sorted order.

    Keys and string values may only hold letters, digits and ``_ . + -`` (no path separators, no
    ``..``), so a user-supplied tag can never name a file outside ``data_dir``; anything else
    raises ``ValueError``.
    """
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        raise ValueError(f"name must be alphanumeric/underscore, got {name!r}")
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of scalar settings, got {type(params).__name__}")
    parts = []
    for key in sorted(params):
        value = params[key]
        if not isinstance(value, (int, float, str, bool)):
            raise TypeError(f"parameter {key!r} must be a scalar, got {type(value).__name__}")
        for what, text in (("key", str(key)), ("value", str(value))):
            if not _SAFE.fullmatch(text) or ".." in text:
                raise ValueError(f"parameter {what} {text!r} of {key!r} may only contain letters, digits and _.+- "
                                 f"(no path separators or '..')")
        parts.append(f"{key}-{value:g}" if isinstance(value, float) else f"{key}-{value}")
    path = Path(data_dir) / f"{name}_{'_'.join(parts)}.npz"
    if path.resolve().parent != Path(data_dir).resolve():
        raise ValueError(f"cache path {path} would leave the cache directory {data_dir}")
    return path


def cached(name: str, params: dict, build: Callable[[], dict], data_dir: str | Path = DEFAULT_DATA_DIR
           ) -> dict[str, np.ndarray]:
    """Load the arrays of ``name``/``params`` from the cache, or ``build()`` and store them.

    ``build`` returns a dict of arrays; it is called only on a cache miss. Writes are atomic
    (temporary file then rename), so an interrupted run never leaves a truncated cache file.
    """
    path = cache_path(name, params, data_dir)
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    check_callable("build", build)
    built = build()
    if not isinstance(built, dict):
        raise TypeError(f"build must return a dict of arrays, got {type(built).__name__}")
    arrays = {k: np.asarray(v) for k, v in built.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    return arrays
