"""scikit-learn's bundled 8x8 digits and a synthetic classification set."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sparsejax.core.validation import check_int, check_number


class Split(NamedTuple):
    """A train/test split of inputs ``x`` (float32) and integer labels ``y``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        """Number of distinct labels."""
        return int(max(self.y_train.max(), self.y_test.max()) + 1)


def load_digits(test_size: float = 0.25, seed: int = 0, *, flatten: bool = False) -> Split:
    """The 1797 8x8 digits, pixels scaled to [0, 1], shape ``(N, 8, 8, 1)`` (or ``(N, 64)``).

    The split is stratified and reproducible from ``seed``.
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    check_number("test_size", test_size, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False)
    check_int("seed", seed, minimum=0)
    bunch = _load()
    x = (bunch.images / 16.0).astype(np.float32)
    x = x.reshape(len(x), -1) if flatten else x[..., None]
    y = bunch.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return Split(x_tr, y_tr, x_te, y_te)


def synthetic_classification(
    n_samples: int = 2000, n_features: int = 32, n_classes: int = 4, test_size: float = 0.25, seed: int = 0
) -> Split:
    """A standardised ``sklearn.datasets.make_classification`` problem split into train/test."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    n_features = check_int("n_features", n_features, minimum=2)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    n_samples = check_int("n_samples", n_samples, minimum=2 * n_classes)
    check_number("test_size", test_size, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False)
    check_int("seed", seed, minimum=0)
    if n_classes * 2 > 2 ** max(2, n_features // 2):
        raise ValueError(f"n_classes={n_classes} needs more informative features than n_features={n_features} gives")

    x, y = make_classification(
        n_samples=n_samples, n_features=n_features, n_informative=max(2, n_features // 2),
        n_classes=n_classes, n_clusters_per_class=2, random_state=seed,
    )
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y.astype(np.int32), test_size=test_size, random_state=seed)
    return Split(x_tr, y_tr, x_te, y_te)
