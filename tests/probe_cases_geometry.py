"""Bad-input cases for the public API of ``geometry`` (table of tests/test_api_probe.py).

Row: ``(entry, label, thunk, names[, heavy])`` as in probe_cases_sparsejax.py.
"""
import functools

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from geometry import lie, ponita, spe

NAN = float("nan")
KEY = jax.random.PRNGKey(0)
RNG = lambda: np.random.default_rng(0)  # noqa: E731
REFLECTION = jnp.array([[1.0, 0.0], [0.0, -1.0]])
SINGULAR = jnp.array([[1.0, 2.0], [2.0, 4.0]])
NAN22 = jnp.full((2, 2), NAN)
EYE2 = jnp.eye(2)
G3 = jnp.stack([EYE2, 2 * EYE2, jnp.array([[1.0, 0.5], [0.0, 1.0]])])   # (3, 2, 2) group elements
FEAT = jnp.ones((1, 4, 4, 3, 2))                                          # (B, H, W, N, C)
POS = jnp.zeros((1, 3, 3)).at[0, 1, 0].set(1.0).at[0, 2, 1].set(1.0)
MASK = jnp.ones((1, 3), bool)
PATH = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
MASK3 = jnp.ones((3,), bool)
GRID = jnp.asarray(ponita.fibonacci_sphere(4))
EIGVECS = jnp.eye(3)


def lazy(f):
    return functools.cache(f)


def _kernel_fn(v):
    return jnp.ones(v.shape[:-1] + (1, 1))


def ponita_model():
    """A tiny model and empty params: every probed check runs before a parameter is read, so no
    case pays for a Ponita compile."""
    return ponita.Ponita(hidden_dim=4, num_layers=1, num_ori=4), {}


@lazy
def spectrum():
    adj = jnp.stack([PATH, PATH])
    return spe.batch_spectra(adj, jnp.ones((2, 3), bool), k=3)


def _init(module, *args):
    return module.init(KEY, *args)


def _nbrs(index):
    return ponita.Neighbours(index, jnp.ones(index.shape, bool))


CASES = [
    # ---- geometry.lie: group functions (shape, domain, NaN)
    ("geometry.lie.act", "g not square", lambda: lie.act(jnp.ones((2, 3)), jnp.ones((4, 2))), r"\bg\b"),
    ("geometry.lie.act", "x wrong dim", lambda: lie.act(EYE2, jnp.ones((4, 3))), r"\bx\b"),
    ("geometry.lie.affine_act", "t wrong shape", lambda: lie.affine_act(jnp.ones(3), EYE2, jnp.ones((4, 2))),
     r"\bt\b"),
    ("geometry.lie.affine_act", "a not square", lambda: lie.affine_act(jnp.ones(2), jnp.ones((2, 3)),
                                                                       jnp.ones((4, 2))), r"\ba\b"),
    ("geometry.lie.affine_inverse", "NaN a", lambda: lie.affine_inverse(jnp.zeros(2), NAN22), r"\ba\b"),
    ("geometry.lie.affine_inverse", "t wrong shape", lambda: lie.affine_inverse(jnp.zeros(3), EYE2), r"\bt\b"),
    ("geometry.lie.affine_product", "a sizes differ", lambda: lie.affine_product(
        jnp.zeros(3), jnp.eye(3), jnp.zeros(2), EYE2), r"\ba2?\b|a1"),
    ("geometry.lie.affine_product", "t wrong shape", lambda: lie.affine_product(
        jnp.zeros(3), EYE2, jnp.zeros(2), EYE2), r"\bt1\b"),
    ("geometry.lie.bilinear_kernel", "coords last dim 3", lambda: lie.bilinear_kernel(
        jnp.ones((5, 5, 2)), jnp.zeros((4, 3))), "coords"),
    ("geometry.lie.bilinear_kernel", "grid rank 1", lambda: lie.bilinear_kernel(jnp.ones(5), jnp.zeros((4, 2))),
     "grid"),
    ("geometry.lie.compose_polar", "p not SPD", lambda: lie.compose_polar(-EYE2, EYE2), r"\bp\b"),
    ("geometry.lie.compose_polar", "r not a rotation", lambda: lie.compose_polar(EYE2, REFLECTION), r"\br\b"),
    ("geometry.lie.equidistant_so2", "num 0", lambda: lie.equidistant_so2(KEY, 0), "num"),
    ("geometry.lie.equidistant_so2", "float num", lambda: lie.equidistant_so2(KEY, 2.5), "num"),
    ("geometry.lie.gl_dim", "n 0", lambda: lie.gl_dim(0), r"\bn\b"),
    ("geometry.lie.gl_dim", "float n", lambda: lie.gl_dim(2.5), r"\bn\b"),
    ("geometry.lie.gl_hat", "v wrong length", lambda: lie.gl_hat(jnp.ones(3), 2), r"\bv\b"),
    ("geometry.lie.gl_hat", "n 0", lambda: lie.gl_hat(jnp.ones(4), 0), r"\bn\b"),
    ("geometry.lie.gl_vee", "x not square", lambda: lie.gl_vee(jnp.ones((2, 3))), r"\bx\b"),
    ("geometry.lie.gl_vee", "x rank 1", lambda: lie.gl_vee(jnp.ones(4)), r"\bx\b"),
    ("geometry.lie.group_conv", "channels mismatch", lambda: lie.group_conv(
        FEAT, jnp.ones((3, 3, 3, 3, 5, 4))), "kernels|features"),
    ("geometry.lie.group_conv", "features rank 4", lambda: lie.group_conv(jnp.ones((1, 4, 4, 2)),
                                                                          jnp.ones((3, 3, 3, 3, 2, 4))), "features"),
    ("geometry.lie.group_conv_kernels", "kernel_size even", lambda: lie.group_conv_kernels(
        _kernel_fn, G3, G3, jnp.ones(3), 4), "kernel_size"),
    ("geometry.lie.group_conv_kernels", "weights wrong length", lambda: lie.group_conv_kernels(
        _kernel_fn, G3, G3, jnp.ones(5), 3), "weights"),
    ("geometry.lie.group_inverse", "NaN g", lambda: lie.group_inverse(NAN22), r"\bg\b"),
    ("geometry.lie.group_inverse", "g not square", lambda: lie.group_inverse(jnp.ones((2, 3))), r"\bg\b"),
    ("geometry.lie.group_layer_norm", "eps < 0", lambda: lie.group_layer_norm(FEAT, eps=-1.0), "eps"),
    ("geometry.lie.group_layer_norm", "features rank 2", lambda: lie.group_layer_norm(jnp.ones((2, 3))), "features"),
    ("geometry.lie.group_product", "sizes differ", lambda: lie.group_product(EYE2, jnp.eye(3)), r"\bb\b|\ba\b"),
    ("geometry.lie.group_product", "NaN a", lambda: lie.group_product(NAN22, EYE2), r"\ba\b"),
    ("geometry.lie.haar_integral", "fn not callable", lambda: lie.haar_integral(
        "f", lie.GroupSamples(G3, jnp.zeros(3))), r"\bfn\b"),
    ("geometry.lie.haar_integral", "samples not GroupSamples", lambda: lie.haar_integral(
        lambda g: g[:, 0, 0], G3), "samples"),
    ("geometry.lie.haar_so", "num 0", lambda: lie.haar_so(KEY, 0, 2), "num"),
    ("geometry.lie.haar_so", "float n", lambda: lie.haar_so(KEY, 2, 2.5), r"\bn\b"),
    ("geometry.lie.invariant_pool", "unknown mode", lambda: lie.invariant_pool(FEAT, "bogus"), "mode"),
    ("geometry.lie.invariant_pool", "features rank 3", lambda: lie.invariant_pool(jnp.ones((1, 2, 3))), "features"),
    ("geometry.lie.kernel_mask", "slope < 0", lambda: lie.kernel_mask(jnp.zeros((3, 2)), slope=-1.0), "slope"),
    ("geometry.lie.kernel_mask", "NaN coords", lambda: lie.kernel_mask(jnp.full((3, 2), NAN)), "coords"),
    ("geometry.lie.kernel_offsets", "kernel_size 0", lambda: lie.kernel_offsets(0), "kernel_size"),
    ("geometry.lie.kernel_offsets", "float kernel_size", lambda: lie.kernel_offsets(3.5), "kernel_size"),
    ("geometry.lie.lift_conv", "images rank 3", lambda: lie.lift_conv(jnp.ones((4, 4, 1)),
                                                                      jnp.ones((3, 3, 3, 1, 2))), "images"),
    ("geometry.lie.lift_conv", "stride 0", lambda: lie.lift_conv(jnp.ones((1, 4, 4, 1)),
                                                                 jnp.ones((3, 3, 3, 1, 2)), stride=0), "stride"),
    ("geometry.lie.lifting_kernels", "kernel_size even", lambda: lie.lifting_kernels(_kernel_fn, G3, 4),
     "kernel_size"),
    ("geometry.lie.lifting_kernels", "g wrong shape", lambda: lie.lifting_kernels(_kernel_fn, EYE2, 3), r"\bg\b"),
    ("geometry.lie.polar_decomposition", "NaN g", lambda: lie.polar_decomposition(NAN22), r"\bg\b"),
    ("geometry.lie.polar_decomposition", "g not square", lambda: lie.polar_decomposition(jnp.ones((2, 3))),
     r"\bg\b"),
    ("geometry.lie.pos_log_density", "y not symmetric", lambda: lie.pos_log_density(
        jnp.array([[0.0, 1.0], [0.0, 0.0]])), r"\by\b"),
    ("geometry.lie.pos_log_density", "NaN y", lambda: lie.pos_log_density(NAN22), r"\by\b"),
    ("geometry.lie.relative_coordinates", "kernel_size even", lambda: lie.relative_coordinates(G3, G3, 4),
     "kernel_size"),
    ("geometry.lie.relative_coordinates", "g_in wrong shape", lambda: lie.relative_coordinates(EYE2, G3, 3),
     "g_in"),
    ("geometry.lie.rotation_2d", "NaN angle", lambda: lie.rotation_2d(jnp.array(NAN)), "theta"),
    ("geometry.lie.rotation_2d", "string angle", lambda: lie.rotation_2d("pi"), "theta"),
    ("geometry.lie.sample_affnist_transforms", "num 0", lambda: lie.sample_affnist_transforms(KEY, 0, 28), "num"),
    ("geometry.lie.sample_affnist_transforms", "magnitude < 0", lambda: lie.sample_affnist_transforms(
        KEY, 2, 28, magnitude=-1.0), "magnitude"),
    ("geometry.lie.sample_group", "n 0", lambda: lie.sample_group(KEY, 4, n=0), r"\bn\b"),
    ("geometry.lie.sample_group", "spd_scale < 0", lambda: lie.sample_group(KEY, 4, spd_scale=-1.0), "spd_scale"),
    ("geometry.lie.sample_group", "unknown rotations", lambda: lie.sample_group(KEY, 4, rotations="bogus"),
     "rotations"),
    ("geometry.lie.sample_layer_elements", "unknown group", lambda: lie.sample_layer_elements(KEY, 4, "bogus", 0.3),
     "group"),
    ("geometry.lie.sample_layer_elements", "num 0", lambda: lie.sample_layer_elements(KEY, 0, "gl2", 0.3), "num"),
    ("geometry.lie.sl_scale_decomposition", "NaN g", lambda: lie.sl_scale_decomposition(NAN22), r"\bg\b"),
    ("geometry.lie.sl_scale_decomposition", "singular g", lambda: lie.sl_scale_decomposition(SINGULAR), r"\bg\b"),
    ("geometry.lie.smooth_disk_mask", "slope < 0", lambda: lie.smooth_disk_mask(jnp.zeros((3, 2)), slope=-1.0),
     "slope"),
    ("geometry.lie.smooth_disk_mask", "NaN v", lambda: lie.smooth_disk_mask(jnp.full((3, 2), NAN)), r"\bv\b"),
    ("geometry.lie.so_log", "NaN r", lambda: lie.so_log(NAN22), r"\br\b"),
    ("geometry.lie.so_log", "r not square", lambda: lie.so_log(jnp.ones((2, 3))), r"\br\b"),
    ("geometry.lie.spatial_max_pool", "window 0", lambda: lie.spatial_max_pool(FEAT, window=0), "window"),
    ("geometry.lie.spatial_max_pool", "features rank 3", lambda: lie.spatial_max_pool(jnp.ones((4, 4, 2))),
     "features"),
    ("geometry.lie.spd_exp", "y not symmetric", lambda: lie.spd_exp(jnp.array([[0.0, 1.0], [0.0, 0.0]])), r"\by\b"),
    ("geometry.lie.spd_exp", "y not square", lambda: lie.spd_exp(jnp.ones((2, 3))), r"\by\b"),
    ("geometry.lie.spd_log", "NaN p", lambda: lie.spd_log(NAN22), r"\bp\b"),
    ("geometry.lie.spd_log", "p not square", lambda: lie.spd_log(jnp.ones((2, 3))), r"\bp\b"),
    ("geometry.lie.spd_sqrt", "p = -I", lambda: lie.spd_sqrt(-EYE2), r"\bp\b"),
    ("geometry.lie.spd_sqrt", "NaN p", lambda: lie.spd_sqrt(NAN22), r"\bp\b"),
    ("geometry.lie.sym_dim", "n 0", lambda: lie.sym_dim(0), r"\bn\b"),
    ("geometry.lie.sym_dim", "float n", lambda: lie.sym_dim(2.5), r"\bn\b"),
    ("geometry.lie.warp_image", "image rank 2", lambda: lie.warp_image(jnp.ones((4, 4)), EYE2, jnp.zeros(2)),
     "image"),
    ("geometry.lie.warp_image", "t wrong shape", lambda: lie.warp_image(jnp.ones((4, 4, 1)), EYE2, jnp.zeros(3)),
     r"\bt\b"),
    ("geometry.lie.xi", "x wrong shape", lambda: lie.xi(jnp.ones(3)), r"\bx\b"),
    ("geometry.lie.xi", "NaN x", lambda: lie.xi(jnp.full(4, NAN)), r"\bx\b"),
    ("geometry.lie.xi_inv", "NaN g", lambda: lie.xi_inv(NAN22), r"\bg\b"),
    ("geometry.lie.xi_inv", "g not square", lambda: lie.xi_inv(jnp.ones((2, 3))), r"\bg\b"),
    ("geometry.lie.AffineGCNN", "unknown group", lambda: _init(lie.AffineGCNN(
        num_classes=3, channels=(2,), num_samples=2, group="bogus", kernel_hidden=4), jnp.ones((1, 8, 8, 1)), KEY),
     "group", True),
    ("geometry.lie.AffineGCNN", "num_classes 0", lambda: _init(lie.AffineGCNN(
        num_classes=0, channels=(2,), num_samples=2, kernel_hidden=4), jnp.ones((1, 8, 8, 1)), KEY), "num_classes",
     True),
    ("geometry.lie.GroupConv", "features 0", lambda: _init(lie.GroupConv(features=0, kernel_size=3, hidden=4),
                                                           FEAT, G3, G3, jnp.ones(3)), "features", True),
    ("geometry.lie.GroupConv", "unknown mask", lambda: _init(lie.GroupConv(features=2, kernel_size=3, hidden=4,
                                                                           mask="bogus"), FEAT, G3, G3, jnp.ones(3)), "mask",
     True),
    ("geometry.lie.LiftingConv", "stride 0", lambda: _init(lie.LiftingConv(features=2, kernel_size=3, stride=0),
                                                           jnp.ones((1, 4, 4, 1)), G3), "stride", True),
    ("geometry.lie.LiftingConv", "features 0", lambda: _init(lie.LiftingConv(features=0, kernel_size=3),
                                                             jnp.ones((1, 4, 4, 1)), G3), "features", True),
    ("geometry.lie.SirenKernel", "unknown mask", lambda: _init(lie.SirenKernel(cin=1, cout=2, hidden=4,
                                                                               mask="bogus"), jnp.zeros((3, 2)), jnp.zeros((3, 4))),
     "mask", True),
    ("geometry.lie.SirenKernel", "cout 0", lambda: _init(lie.SirenKernel(cin=1, cout=0, hidden=4),
                                                         jnp.zeros((3, 2)), jnp.zeros((3, 4))), "cout", True),
    # ---- geometry.ponita
    ("geometry.ponita.Ponita", "hidden_dim 0", lambda: ponita.Ponita(hidden_dim=0, num_layers=1, num_ori=4).init(
        KEY, POS, MASK), "hidden_dim", True),
    ("geometry.ponita.Ponita", "unknown grid_method", lambda: ponita.Ponita(
        hidden_dim=4, num_layers=1, num_ori=4, grid_method="bogus").init(KEY, POS, MASK), "grid_method|method",
     True),
    ("geometry.ponita.Ponita", "NaN positions", lambda: ponita_model()[0].init(
        KEY, POS.at[0, 0, 0].set(NAN), MASK), "pos", True),
    ("geometry.ponita.calibrate", "NaN positions", lambda: ponita.calibrate(
        ponita_model()[0], ponita_model()[1], POS.at[0, 0, 0].set(NAN), MASK), "pos", True),
    ("geometry.ponita.calibrate", "model not a module", lambda: ponita.calibrate("ponita", {}, POS, MASK), "model"),
    ("geometry.ponita.equivariance_error", "n_rotations 0", lambda: ponita.equivariance_error(
        ponita_model()[0], ponita_model()[1], ponita.PointCloudBatch(POS, MASK, None, None), KEY, 0),
     "n_rotations", True),
    ("geometry.ponita.equivariance_error", "n_grid_rotations < 0", lambda: ponita.equivariance_error(
        ponita_model()[0], ponita_model()[1], ponita.PointCloudBatch(POS, MASK, None, None), KEY, 1,
        n_grid_rotations=-1), "n_grid_rotations", True),
    ("geometry.ponita.grid_averaged_apply", "n_grid_rotations < 0", lambda: ponita.grid_averaged_apply(
        ponita_model()[0], ponita_model()[1], POS, MASK, key=KEY, n_grid_rotations=-1), "n_grid_rotations", True),
    ("geometry.ponita.grid_averaged_apply", "NaN positions", lambda: ponita.grid_averaged_apply(
        ponita_model()[0], ponita_model()[1], POS.at[0, 0, 0].set(NAN), MASK), "pos", True),
    ("geometry.ponita.energy_and_forces", "mask wrong shape", lambda: ponita.energy_and_forces(
        None, None, POS, jnp.ones((1, 4), bool)), "node_mask"),
    ("geometry.ponita.energy_and_forces", "apply_fn not callable", lambda: ponita.energy_and_forces(
        "f", None, POS, MASK), "apply_fn"),
    ("geometry.ponita.EGNN", "hidden_dim 0", lambda: ponita.EGNN(hidden_dim=0, num_layers=1).init(KEY, POS, MASK),
     "hidden_dim", True),
    ("geometry.ponita.EGNN", "radius < 0", lambda: ponita.EGNN(hidden_dim=4, num_layers=1, radius=-1.0).init(
        KEY, POS, MASK), "radius", True),
    ("geometry.ponita.TensorProductNet", "l_max < 0", lambda: ponita.TensorProductNet(
        hidden_dim=4, num_layers=1, l_max=-1).init(KEY, POS, MASK), "l_max", True),
    ("geometry.ponita.TensorProductNet", "r_max 0", lambda: ponita.TensorProductNet(
        hidden_dim=4, num_layers=1, r_max=0.0).init(KEY, POS, MASK), "r_max", True),
    ("geometry.ponita.make_model", "unknown name", lambda: ponita.make_model("bogus"), "name"),
    ("geometry.ponita.make_model", "unknown option", lambda: ponita.make_model("egnn", hiden_dim=4),
     "hiden_dim"),
    ("geometry.ponita.distance_invariant", "last dim 4", lambda: ponita.distance_invariant(jnp.ones((4, 4))),
     "rel_pos"),
    ("geometry.ponita.distance_invariant", "NaN rel_pos", lambda: ponita.distance_invariant(jnp.full((4, 3), NAN)),
     "rel_pos"),
    ("geometry.ponita.position_orientation_invariants", "ori wrong dim",
     lambda: ponita.position_orientation_invariants(jnp.ones((4, 3)), jnp.ones((4, 2)), jnp.ones((4, 3))), "ori_i"),
    ("geometry.ponita.position_orientation_invariants", "NaN rel_pos",
     lambda: ponita.position_orientation_invariants(jnp.full((4, 3), NAN), jnp.ones((4, 3)), jnp.ones((4, 3))),
     "rel_pos"),
    ("geometry.ponita.fiber_bundle_attributes", "grid wrong dim", lambda: ponita.fiber_bundle_attributes(
        jnp.ones((2, 2, 3)), jnp.ones((4, 2))), "grid"),
    ("geometry.ponita.fiber_bundle_attributes", "NaN rel_pos", lambda: ponita.fiber_bundle_attributes(
        jnp.full((2, 2, 3), NAN), GRID), "rel_pos"),
    ("geometry.ponita.circle_grid", "n 0", lambda: ponita.circle_grid(0), r"\bn\b"),
    ("geometry.ponita.circle_grid", "float n", lambda: ponita.circle_grid(2.5), r"\bn\b"),
    ("geometry.ponita.fibonacci_sphere", "n 0", lambda: ponita.fibonacci_sphere(0), r"\bn\b"),
    ("geometry.ponita.fibonacci_sphere", "float n", lambda: ponita.fibonacci_sphere(2.5), r"\bn\b"),
    ("geometry.ponita.repulsion_sphere", "n 0", lambda: ponita.repulsion_sphere(0), r"\bn\b"),
    ("geometry.ponita.repulsion_sphere", "step_size < 0", lambda: ponita.repulsion_sphere(4, step_size=-1.0),
     "step_size"),
    ("geometry.ponita.orientation_grid", "dim 5", lambda: ponita.orientation_grid(4, dim=5), "dim"),
    ("geometry.ponita.orientation_grid", "unknown method", lambda: ponita.orientation_grid(4, method="bogus"),
     "method"),
    ("geometry.ponita.random_rotation", "dim 1", lambda: ponita.random_rotation(KEY, dim=1), "dim"),
    ("geometry.ponita.random_rotation", "key not a key", lambda: ponita.random_rotation("k"), "key"),
    ("geometry.ponita.rotate_grid", "rotation wrong shape", lambda: ponita.rotate_grid(GRID, jnp.eye(2)),
     "rotation"),
    ("geometry.ponita.rotate_grid", "NaN rotation", lambda: ponita.rotate_grid(GRID, jnp.full((3, 3), NAN)),
     "rotation"),
    ("geometry.ponita.radius_graph", "max_neighbors 0", lambda: ponita.radius_graph(POS, MASK, max_neighbors=0),
     "max_neighbors"),
    ("geometry.ponita.radius_graph", "mask wrong shape", lambda: ponita.radius_graph(POS, jnp.ones((1, 4), bool)),
     "node_mask"),
    ("geometry.ponita.gather_neighbours", "index out of range", lambda: ponita.gather_neighbours(
        jnp.ones((1, 3, 2)), jnp.full((1, 3, 2), 7)), "index"),
    ("geometry.ponita.gather_neighbours", "float index", lambda: ponita.gather_neighbours(
        jnp.ones((1, 3, 2)), jnp.ones((1, 3, 2))), "index"),
    ("geometry.ponita.relative_positions", "index out of range", lambda: ponita.relative_positions(
        POS, _nbrs(jnp.full((1, 3, 2), 5))), "index"),
    ("geometry.ponita.relative_positions", "pos last dim 4", lambda: ponita.relative_positions(
        jnp.ones((1, 3, 4)), _nbrs(jnp.zeros((1, 3, 2), jnp.int32))), "pos"),
    ("geometry.ponita.polynomial_cutoff", "r_max 0", lambda: ponita.polynomial_cutoff(jnp.ones(4), 0.0), "r_max"),
    ("geometry.ponita.polynomial_cutoff", "p 0", lambda: ponita.polynomial_cutoff(jnp.ones(4), 2.0, p=0), r"\bp\b"),
    ("geometry.ponita.masked_node_sum", "mask wrong shape", lambda: ponita.masked_node_sum(
        jnp.ones((1, 3, 2)), jnp.ones((1, 4), bool)), "node_mask"),
    ("geometry.ponita.masked_node_sum", "float mask", lambda: ponita.masked_node_sum(
        jnp.ones((1, 3, 2)), jnp.ones((1, 3))), "node_mask"),
    ("geometry.ponita.pad_point_clouds", "empty list", lambda: ponita.pad_point_clouds([]), "clouds"),
    ("geometry.ponita.pad_point_clouds", "cloud not (n, 3)", lambda: ponita.pad_point_clouds(
        [{"pos": np.ones((3, 2))}]), "clouds|pos"),
    ("geometry.ponita.polynomial_features", "degree < 0", lambda: ponita.polynomial_features(jnp.ones((4, 2)), -1),
     "degree"),
    ("geometry.ponita.polynomial_features", "float degree", lambda: ponita.polynomial_features(
        jnp.ones((4, 2)), 1.5), "degree"),
    ("geometry.ponita.KernelBasis", "basis_dim 0", lambda: _init(ponita.KernelBasis(hidden_dim=4, basis_dim=0),
                                                                 jnp.ones((4, 2))), "basis_dim", True),
    ("geometry.ponita.KernelBasis", "degree < 0", lambda: _init(ponita.KernelBasis(hidden_dim=4, basis_dim=4,
                                                                                   degree=-1), jnp.ones((4, 2))),
     "degree", True),
    ("geometry.ponita.SeparableFiberConv", "channels 0", lambda: _init(
        ponita.SeparableFiberConv(channels=0), jnp.ones((1, 3, 4, 2)), jnp.ones((1, 3, 2, 4, 4)),
        jnp.ones((4, 4, 4)), _nbrs(jnp.zeros((1, 3, 2), jnp.int32))), "channels", True),
    ("geometry.ponita.ConvNextBlock", "widening_factor 0", lambda: _init(
        ponita.ConvNextBlock(channels=2, widening_factor=0), jnp.ones((1, 3, 4, 2)), jnp.ones((1, 3, 2, 4, 2)),
        jnp.ones((4, 4, 2)), _nbrs(jnp.zeros((1, 3, 2), jnp.int32))), "widening_factor", True),
    ("geometry.ponita.lift_to_grid", "vectors last dim 2", lambda: ponita.lift_to_grid(
        jnp.ones((1, 3, 1)), jnp.ones((1, 3, 1, 2)), GRID), "vectors"),
    ("geometry.ponita.lift_to_grid", "NaN scalars", lambda: ponita.lift_to_grid(
        jnp.full((1, 3, 1), NAN), jnp.ones((1, 3, 1, 3)), GRID), "scalars"),
    ("geometry.ponita.sphere_to_scalar", "x rank 1", lambda: ponita.sphere_to_scalar(jnp.ones(4)), r"\bx\b"),
    ("geometry.ponita.sphere_to_vector", "grid mismatch", lambda: ponita.sphere_to_vector(
        jnp.ones((1, 3, 4, 2)), jnp.ones((5, 3))), "grid"),
    ("geometry.ponita.sphere_to_vector", "grid last dim 4", lambda: ponita.sphere_to_vector(
        jnp.ones((1, 3, 4, 2)), jnp.ones((4, 4))), "grid"),
    # ---- geometry.spe
    ("geometry.spe.normalized_laplacian", "adj not square", lambda: spe.normalized_laplacian(
        jnp.ones((3, 4)), MASK3), "adj"),
    ("geometry.spe.normalized_laplacian", "mask wrong length", lambda: spe.normalized_laplacian(
        PATH, jnp.ones(4, bool)), "node_mask"),
    ("geometry.spe.eigh_padded", "mask wrong length", lambda: spe.eigh_padded(jnp.eye(3), jnp.ones(4, bool)),
     "node_mask"),
    ("geometry.spe.eigh_padded", "laplacian not square", lambda: spe.eigh_padded(jnp.ones((3, 4)), MASK3),
     "laplacian"),
    ("geometry.spe.graph_spectrum", "k < 0", lambda: spe.graph_spectrum(PATH, MASK3, k=-1), r"\bk\b"),
    ("geometry.spe.graph_spectrum", "NaN adj", lambda: spe.graph_spectrum(PATH.at[0, 1].set(NAN), MASK3), "adj"),
    ("geometry.spe.batch_spectra", "unbatched adj", lambda: spe.batch_spectra(PATH, MASK3), "adj"),
    ("geometry.spe.batch_spectra", "NaN adj", lambda: spe.batch_spectra(
        jnp.stack([PATH, PATH.at[0, 1].set(NAN).at[1, 0].set(NAN)]), jnp.ones((2, 3), bool)), "adj"),
    ("geometry.spe.random_sign_flip", "eigvecs rank 1", lambda: spe.random_sign_flip(KEY, jnp.ones(3)), "eigvecs"),
    ("geometry.spe.random_sign_flip", "key not a key", lambda: spe.random_sign_flip("k", EIGVECS), "key"),
    ("geometry.spe.soft_partitions", "phi mismatch", lambda: spe.soft_partitions(EIGVECS, jnp.ones((5, 2))), "phi"),
    ("geometry.spe.soft_partitions", "NaN eigvecs", lambda: spe.soft_partitions(
        jnp.full((3, 3), NAN), jnp.ones((3, 2))), "eigvecs"),
    ("geometry.spe.EigenvalueFunctions", "num_partitions 0", lambda: _init(
        spe.EigenvalueFunctions(num_partitions=0, hidden=4, num_layers=1), jnp.ones(3)), "num_partitions", True),
    ("geometry.spe.EigenvalueFunctions", "num_layers 0", lambda: _init(
        spe.EigenvalueFunctions(num_partitions=2, hidden=4, num_layers=0), jnp.ones(3)), "num_layers", True),
    ("geometry.spe.SPE", "pe_dim 0", lambda: _init(spe.SPE(pe_dim=0, num_partitions=2, phi_hidden=4, phi_layers=1,
                                                           rho_hidden=4, rho_layers=1), spectrum()), "pe_dim", True),
    ("geometry.spe.SPE", "num_partitions 0", lambda: _init(spe.SPE(pe_dim=2, num_partitions=0, phi_hidden=4,
                                                                   phi_layers=1, rho_hidden=4, rho_layers=1),
                                                           spectrum()), "num_partitions", True),
    ("geometry.spe.SignNet", "pe_dim 0", lambda: _init(spe.SignNet(pe_dim=0, phi_hidden=4, rho_hidden=4),
                                                       spectrum()), "pe_dim", True),
    ("geometry.spe.LapPE", "pe_dim 0", lambda: _init(spe.LapPE(pe_dim=0), spectrum()), "pe_dim", True),
    ("geometry.spe.LapPE", "not a spectrum", lambda: _init(spe.LapPE(pe_dim=2), PATH), r"\bg\b|spectrum", True),
    ("geometry.spe.make_pe", "unknown name", lambda: spe.make_pe("bogus"), "name"),
    ("geometry.spe.make_pe", "pe_dim 0", lambda: spe.make_pe("lap", pe_dim=0), "pe_dim"),
    ("geometry.spe.GINRegressor", "out_dim 0", lambda: spe.init_params(
        spe.GINRegressor(pe=spe.NoPE(), out_dim=0, hidden=4, num_layers=1), KEY, spectrum()), "out_dim", True),
    ("geometry.spe.GINRegressor", "num_layers 0", lambda: spe.init_params(
        spe.GINRegressor(pe=spe.NoPE(), out_dim=1, hidden=4, num_layers=0), KEY, spectrum()), "num_layers", True),
    ("geometry.spe.init_params", "batch not a spectrum", lambda: spe.init_params(
        spe.GINRegressor(pe=spe.NoPE(), out_dim=1, hidden=4, num_layers=1), KEY, PATH), "batch"),
    ("geometry.spe.init_params", "model not a module", lambda: spe.init_params("gin", KEY, spectrum()), "model"),
    ("geometry.spe.batched_apply", "model not a module", lambda: spe.batched_apply("gin"), "model"),
    ("geometry.spe.GIN", "features 0", lambda: _init(spe.GIN(features=0, hidden=4, num_layers=1),
                                                     jnp.ones((3, 2)), PATH), "features", True),
    ("geometry.spe.GINLayer", "hidden 0", lambda: _init(spe.GINLayer(features=2, hidden=0), jnp.ones((3, 2)), PATH),
     "hidden", True),
    ("geometry.spe.MLP", "num_layers 0", lambda: _init(spe.MLP(features=2, hidden=4, num_layers=0),
                                                       jnp.ones((3, 2))), "num_layers", True),
    ("geometry.spe.random_graph", "unknown family", lambda: spe.random_graph("bogus", 5, RNG()), "family"),
    ("geometry.spe.random_graph", "n 0", lambda: spe.random_graph("erdos_renyi", 0, RNG()), r"\bn\b"),
    ("geometry.spe.random_graph", "avg_degree < 0", lambda: spe.random_graph("erdos_renyi", 5, RNG(),
                                                                            avg_degree=-1.0), "avg_degree"),
    ("geometry.spe.sample_graphs", "num 0", lambda: spe.sample_graphs(0, (5, 6), RNG()), "num"),
    ("geometry.spe.sample_graphs", "n_range reversed", lambda: spe.sample_graphs(2, (6, 5), RNG()), "n_range"),
    ("geometry.spe.perturb_edges", "fraction > 1", lambda: spe.perturb_edges(nx.path_graph(5), 1.5, RNG()),
     "fraction"),
    ("geometry.spe.perturb_edges", "not a graph", lambda: spe.perturb_edges("g", 0.2, RNG()), "graph"),
    ("geometry.spe.count_cycles", "length 2", lambda: spe.count_cycles(nx.path_graph(5), lengths=[2]), "lengths"),
    ("geometry.spe.count_cycles", "not a graph", lambda: spe.count_cycles("g"), "graph"),
    ("geometry.spe.pad_adjacency", "empty list", lambda: spe.pad_adjacency([]), "graphs"),
    ("geometry.spe.pad_adjacency", "n_max too small", lambda: spe.pad_adjacency([nx.path_graph(5)], n_max=3),
     "n_max"),
]
