"""The PΘNITA network (fibre-bundle mode) and energy/force prediction.

Pipeline (Bekkers et al., ICLR 2024, Sec. 4 and the official ``PonitaFiberBundle``): build the
neighbour graph, compute the separable invariants (Eq. 9) for every edge and grid orientation,
embed them into kernel bases (shared by all layers; the spatial basis is windowed by a smooth
cut-off when a radius is set), lift scalar + vector node features to the grid, embed linearly,
apply ``num_layers`` ConvNeXt blocks of separable group convolutions, read out after every layer
(averaged), and project to invariant scalars (mean over orientations) and equivariant vectors
(orientation-weighted sums).
"""
from __future__ import annotations

from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from geometry.ponita.graph import check_batch, masked_node_sum, polynomial_cutoff, radius_graph, relative_positions
from geometry.ponita.grids import orientation_grid
from geometry.ponita.invariants import fiber_bundle_attributes, safe_norm
from geometry.ponita.layers import ConvNextBlock, KernelBasis, lift_to_grid, sphere_to_scalar, sphere_to_vector
from sparsejax.core.validation import check_array, check_type, check_finite_array, check_callable, check_int


def default_features(pos: jax.Array, scalars, vectors) -> tuple[jax.Array, jax.Array]:
    """Fill missing inputs: a constant scalar channel of ones, zero vector channels."""
    b, n, d = pos.shape
    if scalars is None:
        scalars = jnp.ones((b, n, 1), pos.dtype)
    if vectors is None:
        vectors = jnp.zeros((b, n, 0, d), pos.dtype)
    check_batch(pos, jnp.ones((b, n), bool), scalars, vectors)
    if scalars.shape[-1] + vectors.shape[-2] == 0:
        raise ValueError("need at least one scalar or vector input channel")
    return scalars, vectors


class Ponita(nn.Module):
    """SE(n)-equivariant PΘNITA on padded point clouds in R^2 or R^3 (fibre-bundle mode).

    ``__call__(pos (B,N,d), node_mask (B,N), scalars (B,N,Cs)|None, vectors (B,N,Cv,d)|None,
    grid_rotation (d,d)|None)`` returns node-level ``(scalars (B,N,out_scalars),
    vectors (B,N,out_vectors,d))``; padded nodes output zeros. Defaults follow the official n-body
    settings scaled down (official: hidden 128, basis 256, degree 3, 5 layers, 16 orientations,
    widening 4, layer scale 1e-6, multiple readouts, sum aggregation; ``degree_norm=True`` switches
    to mean aggregation). ``grid_rotation`` rotates the orientation grid; averaging the outputs over
    random grid rotations (:func:`geometry.ponita.grid_averaged_apply`) makes the network
    equivariant in expectation. The network is exactly equivariant only for rotations that map the
    grid onto itself; :func:`geometry.ponita.equivariance_error` measures the error under random
    rotations.
    """

    hidden_dim: int = 64
    num_layers: int = 3
    out_scalars: int = 1
    out_vectors: int = 0
    num_ori: int = 12
    grid_method: str = "repulsion"
    basis_dim: Optional[int] = None
    degree: int = 3
    widening_factor: int = 4
    layer_scale: Optional[float] = 1e-6
    radius: Optional[float] = None
    max_neighbors: Optional[int] = None
    multiple_readouts: bool = True
    degree_norm: bool = False

    def __post_init__(self):
        check_int("hidden_dim", self.hidden_dim, minimum=1)
        check_int("num_layers", self.num_layers, minimum=1)
        check_int("num_ori", self.num_ori, minimum=1)
        check_int("degree", self.degree, minimum=1)
        check_int("widening_factor", self.widening_factor, minimum=1)
        check_int("out_scalars", self.out_scalars, minimum=0)
        check_int("out_vectors", self.out_vectors, minimum=0)
        if self.basis_dim is not None:
            check_int("basis_dim", self.basis_dim, minimum=1)
        super().__post_init__()

    @nn.compact
    def __call__(self, pos, node_mask, scalars=None, vectors=None, grid_rotation=None):
        check_batch(pos, node_mask, scalars, vectors)
        if self.out_scalars + self.out_vectors == 0:
            raise ValueError("out_scalars + out_vectors must be > 0")
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        scalars, vectors = default_features(pos, scalars, vectors)
        d = pos.shape[-1]
        grid = jnp.asarray(orientation_grid(self.num_ori, d, self.grid_method), pos.dtype)
        if grid_rotation is not None:
            check_array("grid_rotation", grid_rotation, shape=(d, d), dtype_kind="f")
            grid = grid @ grid_rotation.T
        nbrs = radius_graph(pos, node_mask, self.radius, self.max_neighbors)
        rel = relative_positions(pos, nbrs)
        spatial_attr, fiber_attr = fiber_bundle_attributes(rel, grid)
        basis_dim = self.basis_dim or self.hidden_dim
        spatial_basis = KernelBasis(self.hidden_dim, basis_dim, self.degree, name="spatial_basis")(spatial_attr)
        fiber_basis = KernelBasis(self.hidden_dim, basis_dim, self.degree, name="fiber_basis")(fiber_attr)
        if self.radius is not None:
            window = polynomial_cutoff(safe_norm(rel), self.radius)
            spatial_basis = spatial_basis * window[..., None, None]

        x = lift_to_grid(scalars, vectors, grid)
        x = nn.Dense(self.hidden_dim, use_bias=False, name="embed")(x)
        n_out = self.out_scalars + self.out_vectors
        readouts = []
        for layer in range(self.num_layers):
            x = ConvNextBlock(
                self.hidden_dim, self.widening_factor, self.layer_scale, self.degree_norm, name=f"block_{layer}"
            )(x, nbrs, spatial_basis, fiber_basis)
            if self.multiple_readouts or layer == self.num_layers - 1:
                readouts.append(nn.Dense(n_out, name=f"readout_{layer}")(x))
        readout = sum(readouts) / len(readouts)
        readout = readout * node_mask[:, :, None, None].astype(readout.dtype)
        out_s = sphere_to_scalar(readout[..., : self.out_scalars])
        out_v = sphere_to_vector(readout[..., self.out_scalars :], grid)
        return out_s, out_v


def calibrate(model: nn.Module, params, *args, **kwargs):
    """Rescale the kernels of every separable convolution so that, on the batch ``args``, the spatial
    convolution and the fibre convolution each preserve the feature standard deviation.

    The official code does this once, on the first training batch; without it the convolution
    outputs are tiny next to the bias and the LayerNorm that follows sees mostly the bias. Returns
    new params (the input pytree is not modified).
    """
    check_type("model", model, nn.Module, "flax.linen Module")
    for name, arg in zip(("pos", "node_mask", "scalars", "vectors"), args):
        if arg is not None and hasattr(arg, "dtype"):
            check_finite_array(name, arg)
    measure = jax.jit(lambda p, *a: model.apply(p, *a, mutable=["intermediates"], **kwargs)[1])
    state = measure(params, *args)
    found = state.get("intermediates", {})
    inner = dict(params["params"])
    for block, content in found.items():
        if "conv" not in content:
            continue
        s_in, s_spatial, s_fiber = content["conv"]["calibration"][0]
        conv = dict(inner[block]["conv"])
        conv["spatial_kernel"] = {"kernel": conv["spatial_kernel"]["kernel"] * (s_in / s_spatial)}
        conv["fiber_kernel"] = {"kernel": conv["fiber_kernel"]["kernel"] * (s_spatial / s_fiber)}
        inner[block] = {**inner[block], "conv": conv}
    if not found:
        raise ValueError("no separable convolutions found: calibrate expects a Ponita model")
    return {**params, "params": inner}


def energy_and_forces(
    apply_fn: Callable, params, pos: jax.Array, node_mask: jax.Array, scalars=None, vectors=None, **kwargs
) -> tuple[jax.Array, jax.Array]:
    """Graph energies ``E_b = sum_i s_i`` (scalar output channel 0 summed over real nodes) and forces
    ``F = -dE/dx`` (exactly equivariant when ``E`` is invariant), ``(B,)`` and ``(B, N, d)``.

    ``apply_fn(params, pos, node_mask, scalars, vectors, **kwargs)`` must return ``(scalars, vectors)``.
    """
    check_batch(pos, node_mask, scalars, vectors)
    check_callable("apply_fn", apply_fn)

    def total_energy(p):
        s, _ = apply_fn(params, p, node_mask, scalars, vectors, **kwargs)
        if s.shape[-1] < 1:
            raise ValueError("the energy model needs at least one scalar output")
        energies = masked_node_sum(s[..., 0], node_mask)
        return jnp.sum(energies), energies

    grad, energies = jax.grad(total_energy, has_aux=True)(pos)
    return energies, -grad
