"""Equivariant networks, positional encodings and geometric / metric algorithms.

Homes: ``geometry.ponita`` (PΘNITA, R^3 x S^2 equivariant networks, P2), ``geometry.lie``
(Lie group decompositions and affine-equivariant convolutions, P19), ``geometry.spe`` (stable
expressive positional encodings, P45), ``geometry.clustering`` (P8, P20), ``geometry.metric``
(P16), plus field encodings, fixed simplex classifiers, Lipschitz SDP bounds and pore-space
skeletons (P40, P42, P47, P34).
"""
