"""Laplacian positional encodings with one interface: SPE and its baselines (none, LapPE, SignNet).

Every encoder is a flax module called on ONE graph, ``pe(g: GraphSpectrum, train=False) -> (N,
pe_dim)`` with zero rows on padded nodes; batch with :func:`geometry.spe.gnn.batched_apply`.

SPE (Huang et al., "On the Stability of Expressive Positional Encodings for Graph Neural
Networks", Sec. 3, Eq. (2)):

    SPE(V, lambda) = rho( V diag(phi_1(lambda)) V^T, ..., V diag(phi_m(lambda)) V^T ),

with permutation-equivariant eigenvalue functions ``phi_l: R^k -> R^k`` (here elementwise MLPs, one
separate network per l, as the official ``psi_list``) and a permutation-equivariant network
``rho: R^{N x N x m} -> R^{N x p}``
(here, as in the official code, a GIN run independently on every column of the tensor followed by
a sum over columns). Each ``V diag(phi_l(lambda)) V^T`` is a "soft partition" of the eigenspaces:
it depends on V only through the eigenspace projections, which makes SPE invariant to the
choice of basis (signs and rotations inside repeated eigenspaces) and, for Lipschitz phi and rho,
stable under Laplacian perturbations (Assumption 3.1 / Theorem 3.1).

Basis invariance needs whole eigenspaces: with a truncated spectrum (``k`` < number of nodes) the
cut must fall between distinct eigenvalues. If ``k`` splits a repeated eigenspace, the kept part of
that eigenspace depends on the basis ``eigh`` happens to return and SPE is no longer invariant (and
no PE built from ``k`` eigenvectors can be).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from geometry.spe.layers import GIN, MLP
from geometry.spe.spectral import GraphSpectrum, random_sign_flip
from sparsejax.core.validation import check_finite_array, check_int, check_type


def soft_partitions(eigvecs: jax.Array, phi: jax.Array) -> jax.Array:
    """``[V diag(phi[:, l]) V^T]_l`` stacked on the last axis: ``(N, k), (k, m) -> (N, N, m)`` (Eq. 2)."""
    if eigvecs.ndim != 2 or phi.ndim != 2 or phi.shape[0] != eigvecs.shape[1]:
        raise ValueError(f"expected eigvecs (N, k) and phi (k, m), got {eigvecs.shape}, {phi.shape}")
    check_finite_array("eigvecs", eigvecs)
    check_finite_array("phi", phi)
    return jnp.einsum("ik,kl,jk->ijl", eigvecs, phi, eigvecs)


class EigenvalueFunctions(nn.Module):
    """The m eigenvalue functions ``phi_l`` of Eq. (2), applied elementwise: ``(k,) -> (k, m)``.

    By default m separate ReLU MLPs ``R -> R`` (the official code's ``psi_list``); ``shared=True``
    uses one MLP ``R -> R^m`` with shared hidden layers instead (an ablation). Either way each
    ``phi_l`` is permutation equivariant and Lipschitz, as Assumption 3.1 requires.
    """

    num_partitions: int = 8
    hidden: int = 32
    num_layers: int = 3
    shared: bool = False

    def __post_init__(self):
        check_int("num_partitions", self.num_partitions, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_int("num_layers", self.num_layers, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, eigvals: jax.Array) -> jax.Array:
        x = eigvals[:, None]
        if self.shared:
            return MLP(self.num_partitions, self.hidden, self.num_layers)(x)
        return jnp.concatenate([MLP(1, self.hidden, self.num_layers, name=f"phi_{l}")(x)
                                for l in range(self.num_partitions)], axis=-1)


class SPE(nn.Module):
    """Stable and Expressive Positional Encoding (Eq. 2): phi_l on the spectrum, soft partitions, rho.

    Invalid eigenpairs (``eig_mask`` False) are dropped by zeroing their phi values; the sum over
    columns in rho runs over real nodes only. ``rho_diag_channel=True`` (off by default, as in the
    paper and the official GIN rho) appends the identity matrix as one more channel of the
    ``(N, N, m)`` tensor, so that the column-wise GIN knows which node is the root of its column (as
    in structural message passing, which the official ``gin_deepsets`` rho cites); it is constant,
    so equivariance, basis invariance and stability are unchanged, but it adds expressive power
    (an ablation). ``shared_phi=True`` shares the hidden layers of the eigenvalue functions. ``rho_layer_norm`` (official code: on)
    is off by default: layer norm is not Lipschitz near zero-variance inputs, which breaks the
    stability assumption (Assumption 3.1) and, numerically, exact basis invariance. ``rho_pool``
    reduces over columns: ``"sum"`` (official code) or ``"mean"`` (PE scale independent of N).
    """

    pe_dim: int = 16
    num_partitions: int = 8
    phi_hidden: int = 32
    phi_layers: int = 3
    rho_hidden: int = 32
    rho_layers: int = 3
    rho_layer_norm: bool = False
    rho_diag_channel: bool = False
    rho_pool: str = "sum"
    shared_phi: bool = False

    def __post_init__(self):
        check_int("pe_dim", self.pe_dim, minimum=1)
        check_int("num_partitions", self.num_partitions, minimum=1)
        check_int("phi_hidden", self.phi_hidden, minimum=1)
        check_int("phi_layers", self.phi_layers, minimum=1)
        check_int("rho_hidden", self.rho_hidden, minimum=1)
        check_int("rho_layers", self.rho_layers, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, g: GraphSpectrum, train: bool = False) -> jax.Array:
        phi_fn = EigenvalueFunctions(self.num_partitions, self.phi_hidden, self.phi_layers, self.shared_phi,
                                     name="phi")
        phi = phi_fn(g.eigvals)
        w = soft_partitions(g.eigvecs, phi * g.eig_mask[:, None])                 # (N, N, m)
        if self.rho_diag_channel:
            w = jnp.concatenate([w, jnp.eye(w.shape[0], dtype=w.dtype)[..., None]], axis=-1)
        rho = GIN(self.pe_dim, self.rho_hidden, self.rho_layers, self.rho_layer_norm, name="rho")
        h = rho(w, g.adj)                                                         # (N, N, pe_dim)
        mask = g.node_mask.astype(h.dtype)
        pooled = (h * mask[None, :, None]).sum(axis=1)
        if self.rho_pool == "mean":
            pooled = pooled / jnp.maximum(mask.sum(), 1.0)
        elif self.rho_pool != "sum":
            raise ValueError(f"rho_pool must be 'sum' or 'mean', got {self.rho_pool!r}")
        return pooled * mask[:, None]


class SignNet(nn.Module):
    """SignNet (Lim et al. 2023): ``rho([phi(v_i) + phi(-v_i)]_{i<=k})``, phi a GIN, rho an MLP.

    Invariant to the sign of every eigenvector but NOT to rotations inside repeated eigenspaces.
    """

    pe_dim: int = 16
    phi_features: int = 4
    phi_hidden: int = 32
    phi_layers: int = 2
    rho_hidden: int = 32

    def __post_init__(self):
        check_int("pe_dim", self.pe_dim, minimum=1)
        check_int("phi_features", self.phi_features, minimum=1)
        check_int("phi_hidden", self.phi_hidden, minimum=1)
        check_int("phi_layers", self.phi_layers, minimum=1)
        check_int("rho_hidden", self.rho_hidden, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, g: GraphSpectrum, train: bool = False) -> jax.Array:
        phi = GIN(self.phi_features, self.phi_hidden, self.phi_layers, name="phi")
        v = g.eigvecs[..., None]                                              # (N, k, 1)
        h = (phi(v, g.adj) + phi(-v, g.adj)) * g.eig_mask[None, :, None]     # (N, k, F)
        h = h.reshape(h.shape[0], -1)
        mask = g.node_mask.astype(h.dtype)
        return MLP(self.pe_dim, self.rho_hidden, 2, name="rho")(h) * mask[:, None]


class LapPE(nn.Module):
    """Raw Laplacian eigenvectors through a linear map; random sign flips while training.

    The sign flips need an rng stream named ``"sign_flip"`` when ``train`` is True.
    """

    pe_dim: int = 16
    sign_flip: bool = True

    def __post_init__(self):
        check_int("pe_dim", self.pe_dim, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, g: GraphSpectrum, train: bool = False) -> jax.Array:
        check_type("g", g, GraphSpectrum, "GraphSpectrum")
        v = g.eigvecs
        if train and self.sign_flip:
            v = random_sign_flip(self.make_rng("sign_flip"), v)
        return nn.Dense(self.pe_dim)(v) * g.node_mask.astype(v.dtype)[:, None]


class NoPE(nn.Module):
    """No positional encoding: an empty ``(N, 0)`` feature matrix."""

    @nn.compact
    def __call__(self, g: GraphSpectrum, train: bool = False) -> jax.Array:
        return jnp.zeros((g.node_mask.shape[0], 0), g.eigvecs.dtype)


PE_NAMES = ("none", "lap", "signnet", "spe")


def make_pe(name: str, pe_dim: int = 16, hidden: int = 32, **kwargs) -> nn.Module:
    """Encoder by name: ``none``, ``lap`` (LapPE), ``signnet`` or ``spe``; extra kwargs go to it."""
    check_int("pe_dim", pe_dim, minimum=1)
    check_int("hidden", hidden, minimum=1)
    if name == "none":
        return NoPE(**kwargs)
    if name == "lap":
        return LapPE(pe_dim=pe_dim, **kwargs)
    if name == "signnet":
        return SignNet(pe_dim=pe_dim, phi_hidden=hidden, rho_hidden=hidden, **kwargs)
    if name == "spe":
        return SPE(pe_dim=pe_dim, phi_hidden=hidden, rho_hidden=hidden, **kwargs)
    raise ValueError(f"unknown positional encoding name {name!r}; valid: {', '.join(PE_NAMES)}")
