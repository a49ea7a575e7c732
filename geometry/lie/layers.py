"""Lifting and group convolutions for the affine group R^2 x| H, H = GL+(2) / SL(2) / SO(2) (P19).

Continuous definitions (left Haar measure of R^n x| H is ``dx dmu_H(h) / |det h|``):

* lifting convolution (image -> function on R^2 x H, Sec. 5)
      (f * k)(x, h) = int f(y) k(h^{-1}(y - x)) dy / |det h|
* group convolution (Sec. 5, kernels parametrised through ``xi^{-1}``)
      (F * k)(x, h) = int_H int F(y, g) k(h^{-1}(y - x), xi^{-1}(h^{-1} g)) dy dmu_H(g) / |det g|
* invariant pooling: max (or mean) over space and group samples.

Both satisfy ``L_(t, A)f * k = L_(t, A)(f * k)`` with ``(L_(t, A)F)(x, h) = F(A^{-1}(x - t), A^{-1} h)``.
Discretisation as in the official code: ``y - x`` runs over a ``K x K`` pixel window (normalised
to ``[-1, 1]^2``), the H-integral is a Monte-Carlo sum over group samples ``g_j`` with weights
``w_j`` (uniform ``1/N`` by default), and the kernel is evaluated continuously at the
transformed offsets ``h_i^{-1} u``. Feature maps on the group have shape ``(B, H, W, N, C)``: the
N axis indexes the group samples. Points are array-index coordinates ``(row, col)``.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from geometry.lie.groups import gl_vee, group_inverse, xi_inv
from sparsejax.core.validation import check_array, check_number, check_finite_array, check_int, check_choice


def kernel_offsets(kernel_size: int) -> jax.Array:
    """Pixel offsets of a ``K x K`` window normalised to ``[-1, 1]^2``, shape (K, K, 2)."""
    kernel_size = check_int("kernel_size", kernel_size)
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
    r = kernel_size // 2
    d = jnp.arange(-r, r + 1, dtype=jnp.float32) / r
    return jnp.stack(jnp.meshgrid(d, d, indexing="ij"), -1)


def bilinear_kernel(grid: jax.Array, coords: jax.Array) -> jax.Array:
    """Continuous kernel from a ``(G, G, ...)`` grid on ``[-1, 1]^2``, bilinear, zero outside.

    ``coords`` of shape ``(..., 2)`` give values of shape ``(..., *grid.shape[2:])``.
    """
    check_array("coords", coords, dtype_kind="f")
    if coords.ndim < 1 or coords.shape[-1] != 2:
        raise ValueError(f"coords must have shape (..., 2), got {tuple(coords.shape)}")
    check_array("grid", grid)
    size = grid.shape[0] if grid.ndim else 0
    if grid.ndim < 2 or grid.shape[1] != size or size < 2:
        raise ValueError(f"grid must have shape (G, G, ...) with G >= 2, got {grid.shape}")
    pos = (coords + 1.0) * 0.5 * (size - 1)
    lo = jnp.floor(pos)
    frac = pos - lo
    lo = lo.astype(jnp.int32)
    out = 0.0
    for di in (0, 1):
        for dj in (0, 1):
            i, j = lo[..., 0] + di, lo[..., 1] + dj
            w = (frac[..., 0] if di else 1 - frac[..., 0]) * (frac[..., 1] if dj else 1 - frac[..., 1])
            inside = (i >= 0) & (i < size) & (j >= 0) & (j < size)
            val = grid[jnp.clip(i, 0, size - 1), jnp.clip(j, 0, size - 1)]
            extra = (1,) * (grid.ndim - 2)
            out = out + jnp.where(inside, w, 0.0).reshape(w.shape + extra) * val
    return out


def _check_group(g: jax.Array, name: str) -> None:
    if g.ndim != 3 or g.shape[1:] != (2, 2):
        raise ValueError(f"{name} must have shape (N, 2, 2), got {g.shape}")


def lifting_kernels(kernel_fn: Callable, g: jax.Array, kernel_size: int) -> jax.Array:
    """Kernels ``k(g_i^{-1} u) / |det g_i|`` of the lifting convolution, shape (N, K, K, Cin, Cout).

    ``kernel_fn`` maps points (..., 2) in kernel coordinates to (..., Cin, Cout).
    """
    _check_group(g, "g")
    u = kernel_offsets(kernel_size)
    v = jnp.einsum("nij,abj->nabi", group_inverse(g), u)
    k = kernel_fn(v)
    return k / jnp.abs(jnp.linalg.det(g))[:, None, None, None, None]


def lift_conv(images: jax.Array, kernels: jax.Array, stride: int = 1) -> jax.Array:
    """Lifting convolution (cross-correlation, SAME padding): (B, H, W, Cin) -> (B, H', W', N, Cout).

    ``stride > 1`` evaluates the output on a coarser spatial grid (``H' = ceil(H / stride)``).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be NHWC, got shape {images.shape}")
    n, kh, kw, cin, cout = kernels.shape
    if cin != images.shape[-1]:
        raise ValueError(f"kernels expect {cin} input channels, images have {images.shape[-1]}")
    w = jnp.transpose(kernels, (1, 2, 3, 0, 4)).reshape(kh, kw, cin, n * cout)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    out = jax.lax.conv_general_dilated(
        images, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return out.reshape(out.shape[:3] + (n, cout))


def relative_coordinates(g_in: jax.Array, g_out: jax.Array, kernel_size: int) -> tuple[jax.Array, jax.Array]:
    """Kernel inputs of the group convolution.

    Returns ``v = h_i^{-1} u`` (N_out, K, K, 2) and the Lie-algebra coordinates
    ``gl_vee(xi^{-1}(h_i^{-1} g_j))`` (N_out, N_in, 4), for ``h = g_out``, ``g = g_in``.
    """
    _check_group(g_in, "g_in")
    _check_group(g_out, "g_out")
    h_inv = group_inverse(g_out)
    v = jnp.einsum("nij,abj->nabi", h_inv, kernel_offsets(kernel_size))
    rel = jnp.einsum("nij,mjk->nmik", h_inv, g_in)
    return v, gl_vee(xi_inv(rel))


def group_conv_kernels(
    kernel_fn: Callable, g_in: jax.Array, g_out: jax.Array, weights: jax.Array, kernel_size: int
) -> jax.Array:
    """Kernels ``w_j k(h_i^{-1} u, xi^{-1}(h_i^{-1} g_j)) / |det g_j|``, shape (N_out, K, K, N_in, Cin, Cout).

    ``kernel_fn(v, c)`` maps broadcast points ``v`` (..., 2) and Lie coordinates ``c`` (..., 4)
    to (..., Cin, Cout); ``weights`` (N_in,) are the Monte-Carlo quadrature weights.
    """
    if weights.shape != (g_in.shape[0],):
        raise ValueError(f"weights must have shape ({g_in.shape[0]},), got {weights.shape}")
    v, lie = relative_coordinates(g_in, g_out, kernel_size)
    k = kernel_fn(v[:, :, :, None, :], lie[:, None, None, :, :])
    scale = weights / jnp.abs(jnp.linalg.det(g_in))
    return k * scale[None, None, None, :, None, None]


def group_conv(features: jax.Array, kernels: jax.Array) -> jax.Array:
    """Group convolution (SAME padding): (B, H, W, N_in, Cin) -> (B, H, W, N_out, Cout)."""
    if features.ndim != 5:
        raise ValueError(f"features must have shape (B, H, W, N, C), got {features.shape}")
    n_out, kh, kw, n_in, cin, cout = kernels.shape
    if features.shape[3:] != (n_in, cin):
        raise ValueError(f"kernels expect (N_in, Cin) = {(n_in, cin)}, features have {features.shape[3:]}")
    w = jnp.transpose(kernels, (1, 2, 3, 4, 0, 5)).reshape(kh, kw, n_in * cin, n_out * cout)
    x = features.reshape(features.shape[:3] + (n_in * cin,))
    out = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out.reshape(out.shape[:3] + (n_out, cout))


def spatial_max_pool(features: jax.Array, window: int = 2) -> jax.Array:
    """``window x window`` max pooling (stride ``window``) over space of a (B, H, W, N, C) map.

    Odd sizes are padded with ``-inf``. Written as reshape + max, whose gradient is much cheaper
    on CPU than ``reduce_window``'s select-and-scatter.
    """
    if features.ndim != 5:
        raise ValueError(f"features must have shape (B, H, W, N, C), got {features.shape}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    b, h, w, n, c = features.shape
    ph, pw = -h % window, -w % window
    x = jnp.pad(features, ((0, 0), (0, ph), (0, pw), (0, 0), (0, 0)), constant_values=-jnp.inf)
    x = x.reshape(b, (h + ph) // window, window, (w + pw) // window, window, n, c)
    return x.max(axis=(2, 4))


def invariant_pool(features: jax.Array, mode: str = "max") -> jax.Array:
    """Pool a group feature map (B, H, W, N, C) over space and group samples to (B, C)."""
    if features.ndim != 5:
        raise ValueError(f"features must have shape (B, H, W, N, C), got {features.shape}")
    if mode == "max":
        return features.max(axis=(1, 2, 3))
    if mode == "mean":
        return features.mean(axis=(1, 2, 3))
    raise ValueError(f"mode must be 'max' or 'mean', got {mode!r}")


def group_layer_norm(features: jax.Array, eps: float = 1e-5) -> jax.Array:
    """Normalise each sample's whole feature map (B, H, W, N, C) to zero mean, unit variance.

    The official code's default ``layernorm3d`` (statistics over space, group samples and
    channels, no affine parameters); equivariant because the statistics are invariant.
    """
    if features.ndim != 5:
        raise ValueError(f"features must have shape (B, H, W, N, C), got {features.shape}")
    check_number("eps", eps, minimum=0.0, min_inclusive=False, allow_traced=True)
    mean = features.mean(axis=(1, 2, 3, 4), keepdims=True)
    var = features.var(axis=(1, 2, 3, 4), keepdims=True)
    return (features - mean) * jax.lax.rsqrt(var + eps)


def smooth_disk_mask(v: jax.Array, slope: float = 2.0) -> jax.Array:
    """``sigmoid(slope (1 - |v|))``: the official code's smooth support mask in kernel coordinates."""
    check_number("slope", slope, minimum=0.0, min_inclusive=False, allow_traced=True)
    check_finite_array("v", v)
    return jax.nn.sigmoid(slope * (1.0 - jnp.linalg.norm(v, axis=-1)))


KERNEL_MASKS = ("smooth", "hard", "none")


def kernel_mask(coords: jax.Array, mode: str = "smooth", slope: float = 2.0) -> jax.Array:
    """Support mask of a continuous kernel at ``coords`` (..., D): ``"smooth"`` is
    :func:`smooth_disk_mask` (official code for GL+(n)), ``"hard"`` the indicator ``|coords| <= 1``
    (official code for the volume-preserving SL(n)), ``"none"`` all ones."""
    check_finite_array("coords", coords)
    check_number("slope", slope, minimum=0.0, min_inclusive=False, allow_traced=True)
    if mode == "smooth":
        return smooth_disk_mask(coords, slope)
    if mode == "hard":
        return (jnp.linalg.norm(coords, axis=-1) <= 1.0).astype(coords.dtype)
    if mode == "none":
        return jnp.ones(coords.shape[:-1], coords.dtype)
    raise ValueError(f"mask must be one of {KERNEL_MASKS}, got {mode!r}")


class LiftingConv(nn.Module):
    """Lifting layer with a learnable ``G x G`` kernel grid evaluated bilinearly at ``g^{-1} u``,
    times a circular support mask on ``|g^{-1} u|`` (``mask``, see :func:`kernel_mask`), so that the
    kernel support is a disk (rotation invariant) rather than the square of the grid.

    Deviation from the official code: the kernel is a bilinear grid, not a SIREN of ``g^{-1} u``.
    """

    features: int
    kernel_size: int = 5
    grid_size: int = 5
    stride: int = 1
    mask: str = "smooth"

    def __post_init__(self):
        check_int("features", self.features, minimum=1)
        check_int("kernel_size", self.kernel_size, minimum=1)
        check_int("grid_size", self.grid_size, minimum=1)
        check_int("stride", self.stride, minimum=1)
        check_choice("mask", self.mask, KERNEL_MASKS)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, g: jax.Array) -> jax.Array:
        cin = images.shape[-1]
        fan_in = self.grid_size**2 * cin
        grid = self.param(
            "kernel", nn.initializers.normal(fan_in**-0.5), (self.grid_size, self.grid_size, cin, self.features)
        )
        kernels = lifting_kernels(lambda v: bilinear_kernel(grid, v) * kernel_mask(v, self.mask)[..., None, None],
                                  g, self.kernel_size)
        return lift_conv(images, kernels, self.stride)


class SirenKernel(nn.Module):
    """SIREN MLP ``(v, c) -> (Cin, Cout)`` on R^2 x gl(2) coordinates (the official code's INR).

    The output is multiplied by a support mask (:func:`kernel_mask`) of the norm of the whole
    coordinate vector ``(v, c)`` (``mask_coords="full"``, the official code for GL+(2): it
    localises the kernel along the group as well as in space) or of ``v`` only (``"spatial"``, the
    official code for SL(2)).
    """

    cin: int
    cout: int
    hidden: int = 32
    num_hidden: int = 2
    omega: float = 10.0
    mask_slope: float = 2.0
    mask: str = "smooth"
    mask_coords: str = "full"

    def __post_init__(self):
        check_int("cin", self.cin, minimum=1)
        check_int("cout", self.cout, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_int("num_hidden", self.num_hidden, minimum=1)
        check_choice("mask", self.mask, KERNEL_MASKS)
        super().__post_init__()

    @nn.compact
    def __call__(self, v: jax.Array, lie: jax.Array) -> jax.Array:
        shape = jnp.broadcast_shapes(v.shape[:-1], lie.shape[:-1])
        x = jnp.concatenate([jnp.broadcast_to(v, shape + (2,)), jnp.broadcast_to(lie, shape + (4,)) / jnp.pi], -1)
        fan = x.shape[-1]
        for i in range(self.num_hidden):
            bound = 1.0 / fan if i == 0 else (6.0 / self.hidden) ** 0.5 / self.omega
            dense = nn.Dense(self.hidden, kernel_init=_symmetric_uniform(bound), name=f"dense_{i}")
            x = jnp.sin(self.omega * dense(x))
        x = nn.Dense(self.cin * self.cout, name="out")(x)
        v_b = jnp.broadcast_to(v, shape + (2,))
        if self.mask_coords == "full":
            coords = jnp.concatenate([v_b, jnp.broadcast_to(lie, shape + (lie.shape[-1],))], -1)
        elif self.mask_coords == "spatial":
            coords = v_b
        else:
            raise ValueError(f"mask_coords must be 'full' or 'spatial', got {self.mask_coords!r}")
        x = x * kernel_mask(coords, self.mask, self.mask_slope)[..., None]
        return x.reshape(shape + (self.cin, self.cout))


def _symmetric_uniform(bound: float):
    """Initializer drawing from ``U(-bound, bound)`` (SIREN initialisation)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class GroupConv(nn.Module):
    """Group convolution whose kernel is a SIREN of ``(h^{-1} u, xi^{-1}(h^{-1} g))`` (masked as in
    :class:`SirenKernel`)."""

    features: int
    kernel_size: int = 5
    hidden: int = 32
    omega: float = 10.0
    mask: str = "smooth"
    mask_coords: str = "full"

    def __post_init__(self):
        check_int("features", self.features, minimum=1)
        check_int("kernel_size", self.kernel_size, minimum=1)
        check_int("hidden", self.hidden, minimum=1)
        check_choice("mask", self.mask, KERNEL_MASKS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, g_in: jax.Array, g_out: jax.Array, weights: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        mlp = SirenKernel(cin, self.features, self.hidden, omega=self.omega, mask=self.mask,
                          mask_coords=self.mask_coords, name="kernel")
        # fixed rescaling so that outputs have O(1) variance at init (fan-in of the discrete sum)
        gain = (self.kernel_size**2 * cin) ** -0.5
        kernels = group_conv_kernels(lambda v, c: gain * mlp(v, c), g_in, g_out, weights, self.kernel_size)
        return group_conv(x, kernels)
