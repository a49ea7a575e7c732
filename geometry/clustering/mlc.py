"""Manifold Linearizing and Clustering (MLC), P20: Ding, Tong, Chan, Dai, Ma, Haeffele, ICCV 2023.

The official MLC code (tianjiaoding/mlc) was not readable here; the loss, the membership layer and the
defaults follow the same group's follow-up code LeslieTrue/CPP (``loss/loss_fn.py`` ``MLCLoss`` and
``TotalCodingRate``, ``model/sink_distance.py``, ``main.py``), which reuses the MLC objective (paper eq. 4).

Objective, with unit features ``Z`` (n x d, rows ``z_i``) and a membership ``G`` (n x m, column ``j`` a soft
cluster, every row summing to 1):

* coding rate ``R(Z) = 1/2 logdet(I_d + d/(n eps2) Z^T Z)``;
* compressed rate ``R_c(Z, G) = sum_j s_j/(2n) logdet(I_d + d/(s_j eps2) Z^T diag(G_j) Z)``, ``s_j = sum_i G_ij``
  (with a one-hot G this is the supervised MCR^2 ``R_c``);
* loss (minimised) ``-R(Z) + R_c(Z, G) + gamma/2 ||G||_F^2``; the Frobenius term keeps ``G`` from the
  identity (every point its own cluster).

Because ``R`` is concave in the Gram matrix, ``R(Z) >= R_c(Z, G)`` for every non-negative G whose rows sum
to 1 (``sum_j s_j/n = 1`` and ``sum_j diag(G_j) = I``): the rate reduction is non-negative.

Membership: ``G = n * P`` with ``P`` the entropic transport plan between uniform marginals ``1/n`` for the
cost ``-|C C^T|`` (kernel ``exp(|C C^T|/eta)``), ``C`` the unit cluster-head outputs, from ott-jax's
log-domain Sinkhorn run for a fixed number of iterations and differentiated by unrolling. Every ott
iteration updates the column potential and then the row potential, so the rows of ``G`` sum to 1 exactly
(and the rate reduction stays >= 0) while the columns are only approximately 1 after few iterations.

Defaults (CPP ``main.py``): ``eps2 = 0.1`` (the ``eps`` passed to ``MLCLoss`` is eps squared),
``gamma = 0.05``, ``eta = 0.175``; optimiser SGD with momentum 0.9, lr 3e-3 and weight decay 1e-4 for
the backbone and feature head, lr 2e-3 and weight decay 5e-3 for the cluster head. After the warm-up
the feature-head weights are copied into the cluster head (CPP ``update_pi_from_z``), so that the first
membership is the Sinkhorn projection of ``|Z Z^T|``. Clusters are read off by spectral clustering of
the symmetrised membership (CPP ``spectral_clustering_metrics``; here scikit-learn's
``SpectralClustering(affinity="precomputed")``).

Deviations / reconstructions:

* ``sinkhorn_iterations = 3`` full ott iterations (6 half-updates); CPP runs 5 half-updates
  (row, column, row, column, row). The kernel is symmetric, so CPP's plan is the transpose-equivalent
  of 2.5 ott iterations; ott cannot stop half-way.
* Network: an MLP backbone (ReLU, no BatchNorm; CPP uses Linear-BN-ReLU-Linear-ReLU on CLIP features)
  with two linear heads, both L2-normalised (CPP ``CPPNet``).
* Warm-up: CPP warms up with the total coding rate ``-R(Z)`` for ``warmup + 1`` steps (default 1) on
  pretrained CLIP features. MLC initialises by self-supervised learning with augmentations [not read
  here]; :func:`warmup_loss` is a reconstruction: ``-R(Zbar) - invariance * mean_i <z_a,i, zbar_i>`` over
  two augmented views ``a`` (``Zbar`` the normalised mean view); ``invariance`` has no official default.
"""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn

from sparsejax.core.validation import check_array, check_finite_array, check_int, check_number

EPS2 = 0.1
GAMMA = 0.05
ETA = 0.175
SINKHORN_ITERATIONS = 3


def _check_features(z, name: str = "z") -> None:
    check_array(name, z, ndim=2, dtype_kind="f")
    if z.shape[0] < 1 or z.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty (n, d) array, got shape {tuple(z.shape)}")
    check_finite_array(name, z)


def _logdet_psd(m: jax.Array) -> jax.Array:
    """``log det`` of symmetric matrices ``I + PSD`` (batched) from their eigenvalues (all >= 1).

    ``eigvalsh`` rather than Cholesky or ``slogdet``: on CPU the backward pass of a batch of small
    Cholesky/LU factorisations is 15-40x slower than that of ``eigvalsh`` (measured, 400 matrices 32x32).
    """
    return jnp.sum(jnp.log(jnp.linalg.eigvalsh(m)), axis=-1)


def coding_rate(z: jax.Array, eps2: float = EPS2) -> jax.Array:
    """``R(Z) = 1/2 logdet(I + d/(n eps2) Z^T Z)`` for features ``z`` of shape (n, d)."""
    _check_features(z)
    check_number("eps2", eps2, minimum=0.0, min_inclusive=False)
    n, d = z.shape
    return 0.5 * _logdet_psd(jnp.eye(d, dtype=z.dtype) + (d / (n * eps2)) * z.T @ z)


def compressed_rate(z: jax.Array, membership: jax.Array, eps2: float = EPS2) -> jax.Array:
    """``R_c(Z, G) = sum_j s_j/(2n) logdet(I + d/(s_j eps2) Z^T diag(G_j) Z)``, ``s_j`` the column sums.

    ``membership`` is (n, m): column ``j`` is the soft cluster ``j`` (non-negative, rows summing to 1 for
    the rate-reduction bound). A one-hot (n, K) label matrix gives the supervised MCR^2 ``R_c``.
    """
    _check_features(z)
    check_array("membership", membership, ndim=2, dtype_kind="f")
    check_finite_array("membership", membership)
    if membership.shape[0] != z.shape[0]:
        raise ValueError(f"membership must have {z.shape[0]} rows (one per point of z), got shape "
                         f"{tuple(membership.shape)}")
    check_number("eps2", eps2, minimum=0.0, min_inclusive=False)
    n, d = z.shape
    s = membership.sum(0) + 1e-8
    grams = jnp.einsum("ij,iab->jab", membership, z[:, :, None] * z[:, None, :])
    scale = (d / (s * eps2))[:, None, None]
    logdets = _logdet_psd(jnp.eye(d, dtype=z.dtype) + scale * grams)
    return jnp.sum(s * logdets) / (2.0 * n)


def rate_reduction(z: jax.Array, membership: jax.Array, eps2: float = EPS2) -> jax.Array:
    """``Delta R = R(Z) - R_c(Z, G)`` (>= 0 when ``G >= 0`` has unit row sums)."""
    return coding_rate(z, eps2) - compressed_rate(z, membership, eps2)


def mlc_loss(z: jax.Array, membership: jax.Array, eps2: float = EPS2, gamma: float = GAMMA) -> jax.Array:
    """The MLC loss ``-R(Z) + R_c(Z, G) + gamma/2 ||G||_F^2`` (minimised)."""
    check_number("gamma", gamma, minimum=0.0)
    return -rate_reduction(z, membership, eps2) + 0.5 * gamma * jnp.sum(membership ** 2)


def doubly_stochastic_membership(c: jax.Array, eta: float = ETA,
                                 iterations: int = SINKHORN_ITERATIONS) -> jax.Array:
    """``G = n * Sinkhorn(exp(|C C^T| / eta))`` with uniform marginals (ott-jax, log domain, unrolled).

    ``c`` (n, d) are the cluster-head outputs. Rows of ``G`` sum to 1 exactly, columns approximately
    (exactly in the limit of many ``iterations``). Differentiable in ``c``.
    """
    _check_features(c, "c")
    check_number("eta", eta, minimum=0.0, min_inclusive=False)
    check_int("iterations", iterations, minimum=1)
    n = c.shape[0]
    geom = geometry.Geometry(cost_matrix=-jnp.abs(c @ c.T), epsilon=eta)
    prob = linear_problem.LinearProblem(geom)
    solver = sinkhorn.Sinkhorn(threshold=0.0, min_iterations=iterations, max_iterations=iterations,
                               inner_iterations=1, implicit_diff=None)
    return n * solver(prob).matrix


def warmup_loss(z_views: Sequence[jax.Array], eps2: float = EPS2, invariance: float = 1.0) -> jax.Array:
    """Self-supervised warm-up (reconstruction): ``-R(Zbar) - invariance * mean_a mean_i <z_a,i, zbar_i>``.

    ``z_views`` are the unit features of the same points under different augmentations; ``Zbar`` is
    their normalised mean. With one view this is CPP's total coding rate loss ``-R(Z)``.
    """
    if len(z_views) < 1:
        raise ValueError("z_views must hold at least one (n, d) feature array")
    check_number("invariance", invariance, minimum=0.0)
    zbar = sum(z_views) / len(z_views)
    zbar = zbar / (jnp.linalg.norm(zbar, axis=1, keepdims=True) + 1e-8)
    sim = sum(jnp.mean(jnp.sum(za * zbar, axis=1)) for za in z_views) / len(z_views)
    return -coding_rate(zbar, eps2) - invariance * sim


class MLCNet(nn.Module):
    """MLP backbone (ReLU) with a feature head ``subspace`` and a cluster head ``cluster``; both outputs
    are L2-normalised rows, ``(z, c)``."""

    hidden: Sequence[int] = (256, 256)
    z_dim: int = 32

    def __post_init__(self):
        for h in self.hidden:
            check_int("hidden", h, minimum=1)
        check_int("z_dim", self.z_dim, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x.reshape(x.shape[0], -1)
        for i, f in enumerate(self.hidden):
            h = nn.relu(nn.Dense(f, name=f"dense_{i}")(h))
        z = nn.Dense(self.z_dim, name="subspace")(h)
        c = nn.Dense(self.z_dim, name="cluster")(h)
        unit = lambda v: v / (jnp.linalg.norm(v, axis=1, keepdims=True) + 1e-8)
        return unit(z), unit(c)


def copy_feature_head(params: dict) -> dict:
    """The one-shot membership initialisation: the cluster head takes the feature head's weights."""
    inner = dict(params["params"])
    if "subspace" not in inner or "cluster" not in inner:
        raise ValueError(f"params must hold 'subspace' and 'cluster' heads, got {sorted(inner)}")
    inner["cluster"] = jax.tree_util.tree_map(jnp.array, inner["subspace"])
    return {**params, "params": inner}


def mlc_optimizer(lr: float = 3e-3, lr_cluster: float = 2e-3, weight_decay: float = 1e-4,
                  weight_decay_cluster: float = 5e-3, momentum: float = 0.9) -> optax.GradientTransformation:
    """CPP's two SGD groups (coupled weight decay as in PyTorch's SGD): the cluster head has its own lr/decay."""
    for name, v in (("lr", lr), ("lr_cluster", lr_cluster)):
        check_number(name, v, minimum=0.0, min_inclusive=False)
    check_number("weight_decay", weight_decay, minimum=0.0)
    check_number("weight_decay_cluster", weight_decay_cluster, minimum=0.0)
    check_number("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)

    def sgd(rate, decay):
        return optax.chain(optax.add_decayed_weights(decay), optax.sgd(rate, momentum=momentum))

    def labels(params):
        return {"params": {k: jax.tree_util.tree_map(lambda _: "cluster" if k == "cluster" else "rest", v)
                           for k, v in params["params"].items()}}

    return optax.multi_transform({"rest": sgd(lr, weight_decay), "cluster": sgd(lr_cluster, weight_decay_cluster)},
                                 labels)


def make_mlc_step(model: nn.Module, tx: optax.GradientTransformation, *, eps2: float = EPS2, gamma: float = GAMMA,
                  eta: float = ETA, iterations: int = SINKHORN_ITERATIONS) -> Callable:
    """A jitted MLC step ``(params, opt_state, x) -> (params, opt_state, metrics)`` on one batch."""
    check_number("eps2", eps2, minimum=0.0, min_inclusive=False)
    check_number("gamma", gamma, minimum=0.0)

    def loss_fn(params, x):
        z, c = model.apply(params, x)
        g = doubly_stochastic_membership(c, eta, iterations)
        r, rc = coding_rate(z, eps2), compressed_rate(z, g, eps2)
        return -r + rc + 0.5 * gamma * jnp.sum(g ** 2), {"R": r, "Rc": rc}

    @jax.jit
    def step(params, opt_state, x):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, {"loss": loss, **aux}

    return step


def make_warmup_step(model: nn.Module, tx: optax.GradientTransformation, *, eps2: float = EPS2,
                     invariance: float = 1.0) -> Callable:
    """A jitted warm-up step ``(params, opt_state, views) -> (params, opt_state, loss)``; ``views`` is a
    stacked (V, n, ...) batch of augmented copies of the same points (see :func:`warmup_loss`)."""

    def loss_fn(params, views):
        zs = [model.apply(params, views[a])[0] for a in range(views.shape[0])]
        return warmup_loss(zs, eps2, invariance)

    @jax.jit
    def step(params, opt_state, views):
        loss, grads = jax.value_and_grad(loss_fn)(params, views)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def cluster_membership(membership, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Labels from spectral clustering of the symmetrised membership ``(|G| + |G|^T)/2`` (scikit-learn)."""
    from sklearn.cluster import SpectralClustering

    g = np.asarray(membership, dtype=np.float64)
    check_array("membership", g, ndim=2)
    if g.shape[0] != g.shape[1]:
        raise ValueError(f"membership must be square (n, n) for spectral clustering, got {g.shape}")
    check_int("n_clusters", n_clusters, minimum=2, maximum=g.shape[0] - 1)
    affinity = 0.5 * (np.abs(g) + np.abs(g).T)
    model = SpectralClustering(n_clusters, affinity="precomputed", random_state=seed, assign_labels="kmeans")
    return model.fit_predict(affinity).astype(np.int32)


def numerical_rank(x, energy: float = 0.95) -> int:
    """Smallest number of singular values of ``x`` (rows = points) holding ``energy`` of ``sum s^2``."""
    x = np.asarray(x, dtype=np.float64)
    check_array("x", x, ndim=2)
    check_number("energy", energy, minimum=0.0, maximum=1.0, min_inclusive=False)
    s2 = np.linalg.svd(x, compute_uv=False) ** 2
    if s2.sum() == 0:
        return 0
    return int(np.searchsorted(np.cumsum(s2) / s2.sum(), energy - 1e-12) + 1)


def subspace_statistics(z, labels, energy: float = 0.95) -> dict:
    """How linear / orthogonal the clusters of ``z`` are: per-cluster numerical rank (``energy``), and the
    mean and max ``|cos|`` of the principal angles between every pair of cluster subspaces (spans of each
    cluster's top singular vectors, as many as its rank)."""
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels)
    check_array("z", z, ndim=2)
    check_array("labels", labels, ndim=1, dtype_kind="iu")
    if labels.shape[0] != z.shape[0]:
        raise ValueError(f"labels must have {z.shape[0]} entries, got {labels.shape[0]}")
    classes = np.unique(labels)
    ranks, bases = [], []
    for k in classes:
        zk = z[labels == k]
        r = max(1, numerical_rank(zk, energy))
        ranks.append(r)
        bases.append(np.linalg.svd(zk, full_matrices=False)[2][:r].T)
    coss = []
    for a in range(len(bases)):
        for b in range(a + 1, len(bases)):
            coss.append(np.linalg.svd(bases[a].T @ bases[b], compute_uv=False))
    flat = np.concatenate(coss) if coss else np.zeros(1)
    return {"ranks": ranks, "mean_rank": float(np.mean(ranks)), "mean_abs_cos": float(np.mean(np.abs(flat))),
            "max_abs_cos": float(np.max(np.abs(flat)))}
