"""Random graphs (networkx), brute-force cycle counts and dense padding for the SPE experiments.

Everything here is host-side numpy/networkx preprocessing; randomness comes from an explicit
``numpy.random.Generator``.
"""
from __future__ import annotations

from typing import Sequence

import networkx as nx
import numpy as np

from sparsejax.core.validation import check_type, check_int

FAMILIES = ("erdos_renyi", "barabasi_albert", "watts_strogatz", "geometric")


def random_graph(family: str, n: int, rng: np.random.Generator, avg_degree: float = 4.0) -> nx.Graph:
    """One random graph on ``n`` nodes from ``family`` with average degree about ``avg_degree``.

    Families: ``erdos_renyi`` (G(n, p), p = avg_degree / (n - 1)), ``barabasi_albert`` (m =
    avg_degree / 2 edges per new node), ``watts_strogatz`` (ring lattice of degree avg_degree,
    rewiring 0.2) and ``geometric`` (random geometric graph in the unit square, radius chosen for
    the target degree).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    if n < 3:
        raise ValueError(f"n must be >= 3, got {n}")
    if avg_degree <= 0:
        raise ValueError(f"avg_degree must be > 0, got {avg_degree}")
    seed = int(rng.integers(2**31 - 1))
    if family == "erdos_renyi":
        return nx.gnp_random_graph(n, min(1.0, avg_degree / (n - 1)), seed=seed)
    if family == "barabasi_albert":
        return nx.barabasi_albert_graph(n, max(1, min(n - 1, int(round(avg_degree / 2)))), seed=seed)
    if family == "watts_strogatz":
        return nx.watts_strogatz_graph(n, max(2, 2 * int(round(avg_degree / 2))), 0.2, seed=seed)
    radius = float(np.sqrt(avg_degree / (np.pi * (n - 1))))
    return nx.random_geometric_graph(n, radius, seed=seed)


def sample_graphs(
    num: int,
    n_range: tuple[int, int],
    rng: np.random.Generator,
    families: Sequence[str] = FAMILIES,
    avg_degree: float = 4.0,
) -> list[nx.Graph]:
    """``num`` graphs, each from a uniformly chosen family with ``n`` uniform in ``n_range`` (inclusive)."""
    check_int("num", num, minimum=1)
    lo, hi = n_range
    if not 3 <= lo <= hi:
        raise ValueError(f"n_range must satisfy 3 <= lo <= hi, got {n_range}")
    if not families:
        raise ValueError("families must be non-empty")
    out = []
    for _ in range(num):
        family = families[int(rng.integers(len(families)))]
        out.append(random_graph(family, int(rng.integers(lo, hi + 1)), rng, avg_degree))
    return out


def perturb_edges(graph: nx.Graph, fraction: float, rng: np.random.Generator) -> nx.Graph:
    """Remove ``round(fraction * |E|)`` random edges and add as many random non-edges."""
    check_type("graph", graph, nx.Graph, "networkx Graph")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    g = nx.Graph(graph)
    edges = list(g.edges())
    n_change = int(round(fraction * len(edges)))
    if n_change == 0:
        return g
    for i in rng.choice(len(edges), size=n_change, replace=False):
        g.remove_edge(*edges[i])
    non_edges = [(u, v) for u in g.nodes for v in g.nodes if u < v and not g.has_edge(u, v)]
    for i in rng.choice(len(non_edges), size=min(n_change, len(non_edges)), replace=False):
        g.add_edge(*non_edges[i])
    return g


def count_cycles(graph: nx.Graph, lengths: Sequence[int] = (3, 4, 5, 6)) -> np.ndarray:
    """Number of simple cycles of each length in ``lengths`` (brute-force enumeration).

    Every cycle is enumerated from its smallest vertex by depth-first search over larger vertices;
    each undirected cycle is then seen once per direction, hence the division by 2.
    """
    check_type("graph", graph, nx.Graph, "networkx Graph")
    lengths = [int(length) for length in lengths]
    if not lengths or min(lengths) < 3:
        raise ValueError(f"cycle lengths must be >= 3, got {lengths}")
    max_len = max(lengths)
    g = nx.convert_node_labels_to_integers(graph)
    nbrs = [sorted(g.neighbors(v)) for v in range(g.number_of_nodes())]
    counts = np.zeros(max_len + 1, dtype=np.int64)

    def extend(start: int, node: int, depth: int, on_path: set) -> None:
        for nxt in nbrs[node]:
            if nxt == start and depth >= 3:
                counts[depth] += 1
            elif nxt > start and nxt not in on_path and depth < max_len:
                on_path.add(nxt)
                extend(start, nxt, depth + 1, on_path)
                on_path.remove(nxt)

    for s in range(len(nbrs)):
        extend(s, s, 1, {s})
    return np.array([counts[length] // 2 for length in lengths], dtype=np.float32)


def pad_adjacency(graphs: Sequence[nx.Graph], n_max: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense zero-padded adjacency ``(B, n_max, n_max)`` (float32) and node mask ``(B, n_max)``."""
    if not graphs:
        raise ValueError("graphs must be non-empty")
    sizes = [g.number_of_nodes() for g in graphs]
    n_max = max(sizes) if n_max is None else int(n_max)
    if max(sizes) > n_max:
        raise ValueError(f"a graph has {max(sizes)} nodes > n_max={n_max}")
    adj = np.zeros((len(graphs), n_max, n_max), np.float32)
    mask = np.zeros((len(graphs), n_max), bool)
    for b, (g, n) in enumerate(zip(graphs, sizes)):
        adj[b, :n, :n] = nx.to_numpy_array(g, nodelist=sorted(g.nodes), dtype=np.float32)
        mask[b, :n] = True
    adj[:, np.arange(n_max), np.arange(n_max)] = 0.0  # no self-loops
    return adj, mask
