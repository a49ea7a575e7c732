"""GCN and GIN node classifiers with per-edge weights (for P32), shaped after the official TEDDY
networks (``net_teddy.py``).

A :class:`Graph` holds the directed message list of an undirected edge list (both directions)
and one weight per message; an edge mask enters as 0/1 weights, so graphs with different masks
share shapes and batch with ``jax.vmap``. The models take the dense ``(n, n)`` propagation matrix
(``Model.adjacency(graph)``, one scatter of the message weights) and propagate with matrix
products; :func:`propagate` is the equal ``segment_sum`` form.

* GCN (official ``GCN`` with PyG ``gcn_norm``): self-loops of weight 1 added, symmetric
  normalisation ``w_ij / sqrt(deg_i deg_j)`` with degrees recomputed from the masked weights;
  layers ``Dense`` without bias, ReLU and dropout (0.5) between layers, logits from the last layer.
* GIN (official ``GIN``, two layers): ``h_l = relu(Dense((1 + eps_l) h + sum_{j in N(i)} h_j))``
  (trainable ``eps_l``, sum over the masked neighbours, no self-loops), output
  ``(Dense(h_1) + h_2) / 2`` with ``h_2`` already ``n_classes`` wide (the official structure,
  ReLU on the last layer included). No bias anywhere, as in the official code.

Input self-loop edges are dropped from message passing (GCN adds its own); the generators here
produce none.
"""
from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.validation import check_array, check_index_range, check_int, check_number


class Graph(NamedTuple):
    """``senders``/``receivers (M,)`` directed messages, ``weights (M,)``, static ``n_nodes``."""

    senders: jax.Array
    receivers: jax.Array
    weights: jax.Array
    n_nodes: int


def directed_messages(edges, n_nodes: int):
    """Both directions of every non-loop undirected edge: ``(senders, receivers, edge_of_message)``."""
    check_array("edges", edges, ndim=2, shape=(None, 2), dtype_kind="iu")
    n_nodes = check_int("n_nodes", n_nodes, minimum=1)
    check_index_range("edges", edges, n_nodes)
    e = np.asarray(edges)
    ids = np.flatnonzero(e[:, 0] != e[:, 1])
    senders = np.concatenate([e[ids, 0], e[ids, 1]])
    receivers = np.concatenate([e[ids, 1], e[ids, 0]])
    return jnp.asarray(senders, jnp.int32), jnp.asarray(receivers, jnp.int32), jnp.asarray(np.concatenate([ids, ids]))


def masked_graph(edges, n_nodes: int, edge_mask=None) -> Graph:
    """:class:`Graph` of ``edges`` with message weights ``edge_mask[edge]`` (1 when ``None``)."""
    s, r, eid = directed_messages(edges, n_nodes)
    if edge_mask is None:
        w = jnp.ones(s.shape[0], jnp.float32)
    else:
        check_array("edge_mask", edge_mask, shape=(edges.shape[0],))
        w = jnp.asarray(edge_mask, jnp.float32)[eid]
    return Graph(s, r, w, n_nodes)


def with_weights(graph: Graph, edge_weights, edges) -> Graph:
    """``graph`` with message weights taken from per-edge ``edge_weights (E,)`` (traceable)."""
    _, _, eid = directed_messages(edges, graph.n_nodes)
    return graph._replace(weights=jnp.asarray(edge_weights, jnp.float32)[eid])


def gcn_normalize(graph: Graph) -> Graph:
    """Add weight-1 self-loops and normalise ``w_ij / sqrt(deg_i deg_j)`` (degrees of the weights)."""
    n = graph.n_nodes
    loops = jnp.arange(n, dtype=graph.senders.dtype)
    s = jnp.concatenate([graph.senders, loops])
    r = jnp.concatenate([graph.receivers, loops])
    w = jnp.concatenate([graph.weights, jnp.ones(n, graph.weights.dtype)])
    deg = jax.ops.segment_sum(w, r, n)
    inv_sqrt = jax.lax.rsqrt(deg)
    return Graph(s, r, w * inv_sqrt[s] * inv_sqrt[r], n)


def dense_adjacency(graph: Graph) -> jax.Array:
    """``(n, n)`` matrix ``A[i, j] = sum of the weights of messages j -> i`` (one scatter of M scalars)."""
    n = graph.n_nodes
    return jnp.zeros((n, n), graph.weights.dtype).at[graph.receivers, graph.senders].add(graph.weights)


def propagate(graph: Graph, h: jax.Array) -> jax.Array:
    """``out_i = sum_{messages j -> i} w * h_j`` by ``jax.ops.segment_sum``."""
    return jax.ops.segment_sum(graph.weights[:, None] * h[graph.senders], graph.receivers, graph.n_nodes)


def gcn_adjacency(graph: Graph) -> jax.Array:
    """Dense GCN propagation matrix: self-loops added, symmetrically normalised."""
    return dense_adjacency(gcn_normalize(graph))


class GCN(nn.Module):
    """``(x (n, F), adj, train) -> logits (n, C)`` with ``adj = GCN.adjacency(masked graph)``
    (computed once per mask, outside the training loop)."""

    adjacency = staticmethod(gcn_adjacency)

    hidden: int
    n_classes: int
    n_layers: int = 2
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x, adj, train: bool = False):
        check_int("n_layers", self.n_layers, minimum=1)
        check_number("dropout", self.dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        for i in range(self.n_layers):
            last = i == self.n_layers - 1
            x = adj @ nn.Dense(self.n_classes if last else self.hidden, use_bias=False, name=f"conv_{i}")(x)
            if not last:
                x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))
        return x


class GIN(nn.Module):
    """Two-layer official-style GIN (module doc), ``adj = GIN.adjacency(masked graph)`` (the plain
    masked adjacency); ``train`` is accepted for a uniform signature."""

    adjacency = staticmethod(dense_adjacency)

    hidden: int
    n_classes: int

    @nn.compact
    def __call__(self, x, adj, train: bool = False):
        xs = []
        for i, width in enumerate((self.hidden, self.n_classes)):
            eps = self.param(f"eps_{i}", nn.initializers.zeros, ())
            x = nn.relu(nn.Dense(width, use_bias=False, name=f"conv_{i}")((1.0 + eps) * x + adj @ x))
            xs.append(x)
        return (nn.Dense(self.n_classes, use_bias=False, name="mlp")(xs[0]) + xs[1]) / 2.0
