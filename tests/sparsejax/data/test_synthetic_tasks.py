"""Needle retrieval and Match3 generators against their definitions (brute force)."""
import itertools

import numpy as np

from sparsejax.data.synthetic_tasks import match3, needle_retrieval


def test_needle_retrieval_layout():
    d = needle_retrieval(50, 40, n_filler=8, n_values=5, seed=0)
    marker = 8
    assert d.vocab_size == 14 and d.tokens.shape == (50, 40)
    for row, tgt, dep in zip(d.tokens, d.targets, d.depth):
        pos = np.flatnonzero(row == marker)
        assert len(pos) == 2 and pos[1] == 39  # one needle marker + the query marker at the end
        assert tgt[-1] == row[pos[0] + 1] and 9 <= tgt[-1] < 14 and (tgt[:-1] == -1).all()
        assert np.isclose(dep[-1], pos[0] / 40) and (row[np.setdiff1d(np.arange(40), [pos[0], pos[0] + 1, 39])] < 8).all()


def test_match3_labels_by_brute_force():
    x, y = match3(20, 7, 11, seed=1)
    for row, lab in zip(x, y):
        for i in range(7):
            hit = any((row[i] + row[j] + row[k]) % 11 == 0 for j, k in itertools.product(range(7), repeat=2))
            assert lab[i] == hit
