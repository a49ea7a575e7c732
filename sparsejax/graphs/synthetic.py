"""Node-classification graphs for P32: a degree-corrected contextual SBM and Zachary's karate club.

:func:`dc_csbm`: ``n`` nodes in ``n_classes`` balanced classes; degree propensities
``theta_i = 1 + Pareto(alpha)`` normalised to mean 1 (power-law degrees); edge ``i ~ j`` with
probability ``min(1, theta_i theta_j B[c_i, c_j])``, ``B = p_in`` within and ``p_out`` across
classes, set from the expected mean degree ``avg_degree`` and the expected fraction ``homophily`` of
intra-class edges (``p_in = avg_degree * homophily * C / n``,
``p_out = p_in (1 - homophily) / (homophily (C - 1))``). Features: ``x_i = mu_{c_i} + noise``, class
means of norm ``feature_signal``, isotropic unit noise in ``feature_dim`` dimensions. Split: random
``train/val/test`` fractions (default 20/20/60). Isolated nodes are kept. The generator is ours.

:func:`karate_club`: networkx's karate club graph, labels from the ``club`` attribute, one-hot node
identities as features, a random split with the same fractions.
"""
from __future__ import annotations

from typing import NamedTuple

import networkx as nx
import numpy as np

from sparsejax.core.validation import check_int, check_number


class NodeGraph(NamedTuple):
    """``edges (E, 2)`` undirected, ``i < j``, no duplicates; ``x (n, F)`` float32; ``y (n,)`` int32;
    ``train``/``val``/``test`` boolean node masks; ``n_classes``."""

    edges: np.ndarray
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    n_classes: int

    @property
    def n_nodes(self) -> int:
        return int(self.x.shape[0])


def _split(rng, n, fractions):
    tr, va = fractions[0], fractions[1]
    if not (0 < tr and 0 < va and tr + va < 1):
        raise ValueError(f"split fractions must be positive with train + val < 1, got {fractions}")
    perm = rng.permutation(n)
    a, b = int(round(tr * n)), int(round((tr + va) * n))
    masks = [np.zeros(n, bool) for _ in range(3)]
    masks[0][perm[:a]], masks[1][perm[a:b]], masks[2][perm[b:]] = True, True, True
    return masks


def dc_csbm(seed: int, n: int = 2000, n_classes: int = 5, avg_degree: float = 10.0, homophily: float = 0.7,
            alpha: float = 2.5, feature_dim: int = 64, feature_signal: float = 1.0,
            split: tuple[float, float] = (0.2, 0.2)) -> NodeGraph:
    """Degree-corrected contextual SBM (module doc)."""
    seed = check_int("seed", seed, minimum=0)
    n = check_int("n", n, minimum=4)
    n_classes = check_int("n_classes", n_classes, minimum=2, maximum=n)
    check_number("avg_degree", avg_degree, minimum=0.0, maximum=n - 1, min_inclusive=False)
    check_number("homophily", homophily, minimum=0.0, maximum=1.0, min_inclusive=False)
    check_number("alpha", alpha, minimum=1.0, min_inclusive=False)
    feature_dim = check_int("feature_dim", feature_dim, minimum=1)
    check_number("feature_signal", feature_signal, minimum=0.0)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % n_classes)
    theta = 1.0 + rng.pareto(alpha, n)
    theta /= theta.mean()
    p_in = avg_degree * homophily * n_classes / n
    p_out = p_in * (1 - homophily) / (homophily * (n_classes - 1))
    i, j = np.triu_indices(n, k=1)
    prob = np.minimum(1.0, theta[i] * theta[j] * np.where(y[i] == y[j], p_in, p_out))
    keep = rng.random(prob.shape[0]) < prob
    edges = np.stack([i[keep], j[keep]], 1).astype(np.int32)
    means = rng.normal(size=(n_classes, feature_dim))
    means *= feature_signal / np.linalg.norm(means, axis=1, keepdims=True)
    x = (means[y] + rng.normal(size=(n, feature_dim))).astype(np.float32)
    tr, va, te = _split(rng, n, split)
    return NodeGraph(edges, x, y.astype(np.int32), tr, va, te, n_classes)


def karate_club(seed: int, split: tuple[float, float] = (0.2, 0.2)) -> NodeGraph:
    """Zachary's karate club (networkx), two classes from the ``club`` attribute (module doc)."""
    seed = check_int("seed", seed, minimum=0)
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    clubs = sorted({d["club"] for _, d in g.nodes(data=True)})
    y = np.array([clubs.index(g.nodes[v]["club"]) for v in range(n)], np.int32)
    edges = np.array(sorted((min(a, b), max(a, b)) for a, b in g.edges()), np.int32)
    tr, va, te = _split(np.random.default_rng(seed), n, split)
    return NodeGraph(edges, np.eye(n, dtype=np.float32), y, tr, va, te, len(clubs))
