"""Monotone submodular objectives with an oracle-call counter (used by P36, :mod:`.dynamic_submodular`).

An objective works on an incremental *state* (the summary of a current set ``S``): ``empty()`` gives the
state of the empty set, ``gains(state, elems)`` the marginal gains ``f(S + e) - f(S)`` of a batch of
candidates, ``add(state, e)`` the state of ``S + e`` and ``value(elems)`` ``f`` of a set. The counter
follows the google-research code of Lattanzi et al. (2020): one oracle call per marginal gain evaluated
(``gains`` counts ``len(elems)``) and one per ``value``; ``add`` after a gain is free. Everything is numpy
(batched gains are vectorised; sets change size, so JAX's static shapes do not fit).

* :class:`Coverage`: element ``e`` covers the items ``items[e]`` (weights ``w``), ``f(S) = w(U_{e in S} items[e])``;
  :func:`graph_coverage` builds it from a graph (``e`` covers its closed neighbourhood ``N[e]``).
* :class:`FacilityLocation`: ``f(S) = sum_i max_{e in S} sim[i, e]`` for a nonnegative ``sim`` (clients x elements).
"""
from __future__ import annotations

import numpy as np

from sparsejax.core.validation import check_array, check_finite_array

__all__ = ["Coverage", "FacilityLocation", "graph_coverage"]


class _Counted:
    """Oracle-call bookkeeping shared by the objectives."""

    calls: int = 0

    def reset_calls(self) -> None:
        """Set the oracle-call counter to zero."""
        self.calls = 0

    def _elems(self, elems) -> np.ndarray:
        elems = np.asarray(elems, np.int64).reshape(-1)
        if elems.size and (elems.min() < 0 or elems.max() >= self.n):
            raise ValueError(f"elements must lie in [0, {self.n}), got range [{elems.min()}, {elems.max()}]")
        return elems


class Coverage(_Counted):
    """Weighted coverage: ``indptr``/``indices`` (CSR, element -> covered items), item ``weights`` (default 1)."""

    def __init__(self, indptr, indices, weights=None):
        indptr = np.asarray(check_array("indptr", np.asarray(indptr), ndim=1, dtype_kind="iu"), np.int64)
        indices = np.asarray(check_array("indices", np.asarray(indices), ndim=1, dtype_kind="iu"), np.int64)
        if indptr.size < 1 or indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
            raise ValueError("indptr must start at 0, be non-decreasing and end at len(indices)")
        n_items = int(indices.max()) + 1 if indices.size else 0
        if indices.size and indices.min() < 0:
            raise ValueError(f"indices must be >= 0, got {indices.min()}")
        if weights is None:
            weights = np.ones(n_items)
        weights = np.asarray(check_finite_array("weights", check_array("weights", np.asarray(weights, float),
                                                                       ndim=1)))
        if weights.size < n_items or np.any(weights < 0):
            raise ValueError(f"weights must be >= 0 with at least {n_items} entries, got {weights.size}")
        self.indptr, self.indices, self.weights = indptr, indices, weights
        self.n = indptr.size - 1
        self.calls = 0

    def empty(self) -> np.ndarray:
        """State of the empty set: the uncovered weight of every item."""
        return self.weights.copy()

    def gains(self, state: np.ndarray, elems) -> np.ndarray:
        """Marginal gains of ``elems`` w.r.t. the set summarised by ``state`` (counts ``len(elems)`` calls)."""
        elems = self._elems(elems)
        self.calls += elems.size
        if elems.size == 0:
            return np.zeros(0)
        lo, hi = self.indptr[elems], self.indptr[elems + 1]
        lengths = hi - lo
        flat = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        vals = state[self.indices[flat]]
        return np.bincount(np.repeat(np.arange(elems.size), lengths), weights=vals, minlength=elems.size)

    def add(self, state: np.ndarray, e: int) -> np.ndarray:
        """State after adding ``e`` (not counted)."""
        out = state.copy()
        out[self.indices[self.indptr[e]:self.indptr[e + 1]]] = 0.0
        return out

    def value(self, elems) -> float:
        """``f(elems)`` (one oracle call)."""
        elems = self._elems(elems)
        self.calls += 1
        covered = np.zeros(self.weights.size, bool)
        for e in elems:
            covered[self.indices[self.indptr[e]:self.indptr[e + 1]]] = True
        return float(self.weights[covered].sum())


def graph_coverage(graph) -> Coverage:
    """Coverage on a networkx graph with nodes ``0 .. n-1``: node ``v`` covers its closed neighbourhood."""
    n = graph.number_of_nodes()
    if sorted(graph.nodes) != list(range(n)):
        raise ValueError("graph nodes must be 0 .. n-1 (use networkx.convert_node_labels_to_integers)")
    sets = [np.array(sorted(set(graph.neighbors(v)) | {v}), np.int64) for v in range(n)]
    indptr = np.concatenate([[0], np.cumsum([s.size for s in sets])])
    return Coverage(indptr, np.concatenate(sets) if sets else np.zeros(0, np.int64))


class FacilityLocation(_Counted):
    """Facility location on a nonnegative similarity matrix ``sim`` of shape (clients, elements)."""

    def __init__(self, sim):
        sim = np.asarray(check_finite_array("sim", check_array("sim", np.asarray(sim, float), ndim=2)))
        if np.any(sim < 0):
            raise ValueError(f"sim must be nonnegative, got min {sim.min()}")
        self.sim = sim
        self.n = sim.shape[1]
        self.calls = 0

    def empty(self) -> np.ndarray:
        """State of the empty set: every client's best similarity so far (0)."""
        return np.zeros(self.sim.shape[0])

    def gains(self, state: np.ndarray, elems) -> np.ndarray:
        """Marginal gains ``sum_i max(sim[i, e] - state[i], 0)`` (counts ``len(elems)`` calls)."""
        elems = self._elems(elems)
        self.calls += elems.size
        return np.maximum(self.sim[:, elems] - state[:, None], 0.0).sum(0)

    def add(self, state: np.ndarray, e: int) -> np.ndarray:
        """State after adding ``e`` (not counted)."""
        return np.maximum(state, self.sim[:, e])

    def value(self, elems) -> float:
        """``f(elems)`` (one oracle call)."""
        elems = self._elems(elems)
        self.calls += 1
        return float(self.sim[:, elems].max(1).sum()) if elems.size else 0.0
