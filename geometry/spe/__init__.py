"""Stable and Expressive Positional Encodings (SPE, P45) with LapPE / SignNet / no-PE baselines.

Huang et al., "On the Stability of Expressive Positional Encodings for Graph Neural Networks"
(ICLR 2024). Spectra: :mod:`geometry.spe.spectral`; encoders: :mod:`geometry.spe.encoders`;
GIN regressor: :mod:`geometry.spe.gnn`; random graphs and cycle counts: :mod:`geometry.spe.graphs`.
"""
from geometry.spe.encoders import (
    PE_NAMES,
    SPE,
    EigenvalueFunctions,
    LapPE,
    NoPE,
    SignNet,
    make_pe,
    soft_partitions,
)
from geometry.spe.gnn import GINRegressor, batched_apply, init_params
from geometry.spe.graphs import (
    FAMILIES,
    count_cycles,
    pad_adjacency,
    perturb_edges,
    random_graph,
    sample_graphs,
)
from geometry.spe.layers import GIN, MLP, GINLayer
from geometry.spe.spectral import (
    GraphSpectrum,
    batch_spectra,
    eigh_padded,
    graph_spectrum,
    normalized_laplacian,
    random_sign_flip,
)

__all__ = [
    "GraphSpectrum", "normalized_laplacian", "eigh_padded", "graph_spectrum", "batch_spectra",
    "random_sign_flip", "soft_partitions", "EigenvalueFunctions", "SPE", "SignNet", "LapPE", "NoPE",
    "make_pe", "PE_NAMES", "GINRegressor", "init_params", "batched_apply", "GIN", "GINLayer", "MLP",
    "FAMILIES", "random_graph", "sample_graphs", "perturb_edges", "count_cycles", "pad_adjacency",
]
