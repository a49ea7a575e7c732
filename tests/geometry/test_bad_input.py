"""Bad input to the public geometry API (issue #12): every case raises ValueError/TypeError naming the problem.

NaN/inf inputs to PΘNITA and the graph Laplacians, Lie-group functions outside their domain
(det <= 0, singular, non-SPD, non-rotation), and bad settings of the geometry experiments' helpers.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments._stats import best_finite, mean_std
from geometry.lie import (
    affine_inverse,
    group_inverse,
    kernel_mask,
    polar_decomposition,
    sl_scale_decomposition,
    so_log,
    spd_exp,
    spd_log,
    spd_sqrt,
    warp_image,
    xi_inv,
)
from geometry.ponita import PointCloudBatch, Ponita, energy_and_forces, equivariance_error, radius_graph
from geometry.ponita.training import warmup_cosine_adam
from geometry.spe import eigh_padded, graph_spectrum, normalized_laplacian

NAN = float("nan")
POS = jnp.zeros((1, 3, 3)).at[0, 1, 0].set(1.0).at[0, 2, 1].set(1.0)
MASK = jnp.ones((1, 3), bool)
REFLECTION = jnp.array([[1.0, 0.0], [0.0, -1.0]])
SINGULAR = jnp.array([[1.0, 2.0], [2.0, 4.0]])
PATH = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
MASK3 = jnp.ones((3,), bool)


def _ponita_apply(pos, scalars=None, vectors=None, mask=MASK):
    model = Ponita(hidden_dim=4, num_layers=1, num_ori=4)
    params = model.init(jax.random.PRNGKey(0), POS, MASK)
    return model.apply(params, pos, mask, scalars, vectors)


def _equivariance(batch=None, n_rotations=2):
    model = Ponita(hidden_dim=4, num_layers=1, num_ori=4)
    params = model.init(jax.random.PRNGKey(0), POS, MASK)
    return equivariance_error(model, params, batch or PointCloudBatch(POS, MASK, None, None),
                              jax.random.PRNGKey(1), n_rotations)


CASES = [
    # PΘNITA: NaN / inf inputs and wrong types
    ("ponita NaN position", lambda: _ponita_apply(POS.at[0, 0, 0].set(NAN)), ValueError, "pos must be finite"),
    ("ponita inf scalar", lambda: _ponita_apply(POS, scalars=jnp.full((1, 3, 1), jnp.inf)), ValueError,
     "scalars must be finite"),
    ("ponita NaN vector", lambda: _ponita_apply(POS, vectors=jnp.full((1, 3, 1, 3), NAN)), ValueError,
     "vectors must be finite"),
    ("ponita integer positions", lambda: _ponita_apply(jnp.zeros((1, 3, 3), jnp.int32)), TypeError,
     "pos must have a floating dtype"),
    ("ponita float mask", lambda: _ponita_apply(POS, mask=jnp.ones((1, 3))), TypeError, "node_mask must have"),
    ("energy_and_forces NaN position", lambda: energy_and_forces(None, None, POS.at[0, 1, 1].set(NAN), MASK),
     ValueError, "pos must be finite"),
    ("radius_graph inf position", lambda: radius_graph(POS.at[0, 2, 2].set(jnp.inf), MASK), ValueError,
     "pos must be finite"),
    ("radius_graph bad radius", lambda: radius_graph(POS, MASK, radius=-1.0), ValueError, "radius must be > 0"),
    ("equivariance_error zero rotations", lambda: _equivariance(n_rotations=0), ValueError, "n_rotations must be >= 1"),
    ("equivariance_error not a batch", lambda: _equivariance(batch=(POS, MASK, None, None)), TypeError,
     "PointCloudBatch"),
    ("optimiser negative clip", lambda: warmup_cosine_adam(1e-3, 10, grad_clip=-1.0), ValueError,
     "grad_clip must be > 0"),
    ("optimiser zero lr", lambda: warmup_cosine_adam(0.0, 10), ValueError, "lr must be > 0"),
    # graph Laplacians
    ("laplacian NaN adjacency", lambda: normalized_laplacian(PATH.at[0, 1].set(NAN), MASK3), ValueError,
     "adj must be finite"),
    ("laplacian inf adjacency", lambda: graph_spectrum(PATH.at[1, 2].set(jnp.inf), MASK3), ValueError,
     "adj must be finite"),
    ("laplacian asymmetric adjacency", lambda: normalized_laplacian(PATH.at[0, 2].set(1.0), MASK3), ValueError,
     "adj must be symmetric"),
    ("laplacian negative weight", lambda: normalized_laplacian(-PATH, MASK3), ValueError, "adj must be non-negative"),
    ("eigh_padded NaN laplacian", lambda: eigh_padded(jnp.eye(3).at[0, 0].set(NAN), MASK3), ValueError,
     "laplacian must be finite"),
    ("eigh_padded k = 0", lambda: eigh_padded(jnp.eye(3), MASK3, k=0), ValueError, "k must be >= 1"),
    ("eigh_padded float k", lambda: eigh_padded(jnp.eye(3), MASK3, k=2.5), TypeError, "k must be an int"),
    # Lie groups outside their domain
    ("polar det < 0", lambda: polar_decomposition(REFLECTION), ValueError, r"GL\+\(n\) \(det > 0\)"),
    ("polar singular", lambda: polar_decomposition(SINGULAR), ValueError, r"det > 0"),
    ("xi_inv det < 0", lambda: xi_inv(REFLECTION), ValueError, r"GL\+\(n\)"),
    ("sl_scale det < 0", lambda: sl_scale_decomposition(-jnp.eye(3)), ValueError, r"GL\+\(n\)"),
    ("group_inverse singular", lambda: group_inverse(SINGULAR), ValueError, "g must be invertible"),
    ("affine_inverse singular", lambda: affine_inverse(jnp.zeros(2), SINGULAR), ValueError, "must be invertible"),
    ("warp_image singular", lambda: warp_image(jnp.ones((4, 4, 1)), SINGULAR, jnp.zeros(2)), ValueError,
     "must be invertible"),
    ("warp_image NaN image", lambda: warp_image(jnp.full((4, 4, 1), NAN), jnp.eye(2), jnp.zeros(2)), ValueError,
     "image must be finite"),
    ("spd_log negative definite", lambda: spd_log(-jnp.eye(2)), ValueError, "symmetric positive definite"),
    ("spd_sqrt indefinite", lambda: spd_sqrt(jnp.diag(jnp.array([1.0, -1.0]))), ValueError,
     "smallest eigenvalue"),
    ("spd_log asymmetric", lambda: spd_log(jnp.array([[1.0, 0.5], [0.0, 1.0]])), ValueError, "p - p\\^T"),
    ("spd_exp NaN", lambda: spd_exp(jnp.full((2, 2), NAN)), ValueError, "y must be finite"),
    ("so_log reflection", lambda: so_log(REFLECTION), ValueError, "must be a rotation"),
    ("so_log scaled", lambda: so_log(2.0 * jnp.eye(3)), ValueError, "must be a rotation"),
    ("polar integer matrix", lambda: polar_decomposition(jnp.eye(2, dtype=jnp.int32)), TypeError, "floating-point"),
    ("kernel_mask unknown mode", lambda: kernel_mask(jnp.zeros((3, 2)), "square"), ValueError, "mask must be one of"),
    # experiment summary helpers
    ("mean_std of NaN", lambda: mean_std([1.0, NAN]), ValueError, "finite numbers"),
]


@pytest.mark.parametrize("fn, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(fn, error, match):
    with pytest.raises(error, match=match):
        fn()


def test_valid_inputs_at_the_domain_edges_still_work():
    """The checks do not reject valid inputs: a rotation by pi, a near-singular but invertible
    matrix, a graph with an isolated node, and NaN-free ranking."""
    p, r = polar_decomposition(jnp.array([[-1.0, 0.0], [0.0, -1.0]]))
    np.testing.assert_allclose(p, jnp.eye(2), atol=1e-6)
    g = jnp.array([[1.0, 0.0], [0.0, 1e-6]])
    np.testing.assert_allclose(group_inverse(g) @ g, jnp.eye(2), atol=1e-4)
    lap = normalized_laplacian(PATH.at[0, 1].set(0.0).at[1, 0].set(0.0), MASK3)
    assert float(lap[0, 0]) == 1.0
    assert best_finite([("a", NAN), ("b", 2.0), ("c", 1.0)]) == "c"
    assert best_finite([("a", NAN), ("b", "nan")]) is None


def test_checks_are_skipped_under_jit_where_values_are_unknown():
    """Under jit the domain is a documented precondition: a traced det < 0 input does not raise."""
    out = jax.jit(lambda g: polar_decomposition(g)[0])(REFLECTION)
    assert out.shape == (2, 2)
