"""Coupled structural groups across layers and compact-network extraction (shared by P24, P33, P39).

A *group* is one removable unit of a network: a neuron (kernel column + bias + the next layer's kernel
row), a conv filter (kernel slice + BN scale/shift + the next layer's input channel) or an attention
head (its q/k/v columns + biases + the output projection's rows). A :class:`GroupSpec` holds ``size``
such groups that share a layout: group ``i`` is, in every :class:`Member` leaf, the index range
``[offset + i*block, offset + (i+1)*block)`` along ``axis``. Channels tied by a residual addition are
one group (declare their dependencies under the same name, :func:`build_groups` merges them).

Members have a role:

- ``"out"``: weights that *produce* the group's channel (kernel column, BN scale, q/k biases ...);
- ``"shift"``: the additive term the channel emits once its ``out`` weights are zero (Dense bias, BN
  shift beta, the value bias of a head: attention rows sum to one, so a head with zero value weights
  outputs exactly its value bias);
- ``"in"``: slices of the layers that *read* the channel (next kernel's row / input channel, out-proj rows).

:func:`extract` removes dropped groups. Its output equals that of the *zero-masked* network, the one
whose dropped groups have their ``out`` weights set to zero (``group_keep_mask(..., roles=("out",))``):
such a channel emits the constant ``act(shift)``, which ``extract`` folds into the reading layer's bias
(``bias += act(shift) @ W_in``, summed over a conv window - exact for ``VALID`` padding, where every
output position sees the full window; ``sparsejax.nn.BNCNN`` uses ``VALID`` for that reason). Masking
every role (the default of :func:`group_keep_mask`) zeroes the shift too, and ``extract`` equals that
network as well. A group with several shift members (residual-coupled channels, where the constants
mix through the addition) is only extracted when the dropped groups' shifts are zero; otherwise it raises.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax.core.tree import leaves_with_paths, path_str
from sparsejax.core.validation import check_choice, check_int, is_traced

ROLES = ("out", "shift", "in")
# host-side (numpy) activations for the folds in extract; gelu is the tanh approximation that flax's
# nn.gelu / jax.nn.gelu use by default
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "identity": lambda x: x,
}


@dataclasses.dataclass(frozen=True)
class Member:
    """One slice of one params leaf: the leaf at ``'/'``-joined ``path`` (as
    :func:`sparsejax.core.tree.path_str`, e.g. ``'dense_0/kernel'``); group ``i`` is the index range
    ``[offset + i*block, offset + (i+1)*block)`` along ``axis``; ``role`` is ``"out"``, ``"shift"`` or ``"in"``.
    ``fold`` (``in`` members only) names where :func:`extract` puts the constant a dropped channel sends
    through this layer: ``""`` adds it to the sibling ``bias`` leaf; a BatchNorm module path (``"bn_1"``,
    for a bias-free conv followed by BN) subtracts it from that module's running ``mean`` instead
    (exact in eval mode, and in train mode the batch mean removes it anyway)."""

    path: str
    axis: int
    block: int = 1
    offset: int = 0
    role: str = "out"
    fold: str = ""

    def __post_init__(self):
        check_choice("Member.role", self.role, ROLES)
        check_int("Member.block", self.block, minimum=1)
        check_int("Member.offset", self.offset, minimum=0)

    def indices(self, groups) -> np.ndarray:
        """Leaf indices along ``axis`` of the given group indices (flattened, in group order)."""
        groups = np.asarray(groups, np.int64).reshape(-1)
        return (self.offset + groups[:, None] * self.block + np.arange(self.block)[None, :]).reshape(-1)


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    """``size`` groups; group ``i`` is slice ``i`` of every member. ``activation`` (``relu``, ``gelu``,
    ``identity``) sits between the shift and the reading layers; :func:`extract` uses it to fold."""

    name: str
    size: int
    members: tuple[Member, ...]
    activation: str = "relu"

    def __post_init__(self):
        check_int("GroupSpec.size", self.size, minimum=1)
        check_choice("GroupSpec.activation", self.activation, tuple(ACTIVATIONS))
        if not self.members:
            raise ValueError(f"GroupSpec {self.name!r} has no members")


@dataclasses.dataclass(frozen=True)
class Dependency:
    """A declared dependency: the members of one group family. ``size`` (default: inferred from the
    first member that does not share its leaf axis with another member) is the number of groups.
    Dependencies with the same ``name`` are merged into one group (residual coupling)."""

    name: str
    members: tuple[Member, ...]
    activation: str = "relu"
    size: int | None = None


def _flat(params) -> dict[str, Any]:
    return dict(leaves_with_paths(params))


def _leaf(flat: dict, path: str, where: str):
    if path not in flat:
        raise ValueError(f"{where}: no params leaf at path {path!r}; leaves are {sorted(flat)}")
    return flat[path]


def _axis(leaf, member: Member, where: str) -> int:
    nd = np.ndim(leaf)
    if not -nd <= member.axis < nd:
        raise ValueError(f"{where}: axis {member.axis} out of range for leaf {member.path!r} of shape {np.shape(leaf)}")
    return member.axis % nd


def check_specs(params, specs: Sequence[GroupSpec]) -> None:
    """Raise ``ValueError`` if a member path is missing, an axis is out of range, a slice runs past
    its leaf, or two specs claim the same leaf indices."""
    flat = _flat(params)
    claimed: dict[tuple[str, int], np.ndarray] = {}
    names = set()
    for spec in specs:
        if spec.name in names:
            raise ValueError(f"two GroupSpecs are named {spec.name!r}")
        names.add(spec.name)
        for m in spec.members:
            where = f"GroupSpec {spec.name!r}"
            leaf = _leaf(flat, m.path, where)
            ax = _axis(leaf, m, where)
            end = m.offset + spec.size * m.block
            if end > np.shape(leaf)[ax]:
                raise ValueError(f"{where}: member {m.path!r} axis {ax} slice [{m.offset}, {end}) runs past "
                                 f"its length {np.shape(leaf)[ax]}")
            used = claimed.setdefault((m.path, ax), np.zeros(np.shape(leaf)[ax], bool))
            idx = m.indices(np.arange(spec.size))
            if used[idx].any():
                raise ValueError(f"{where}: leaf {m.path!r} axis {ax} indices are claimed twice")
            used[idx] = True


def build_groups(params, dependencies: Iterable[Dependency]) -> list[GroupSpec]:
    """GroupSpecs from a declared dependency list. The number of groups is ``Dependency.size`` or, by
    default, ``(leaf.shape[axis] - offset) // block`` of the first member that does not share its leaf
    axis with another member, and every such member must cover its axis exactly; dependencies sharing
    a name are merged (their sizes must match). Checked with :func:`check_specs`."""
    flat = _flat(params)
    merged: dict[str, list] = {}
    for dep in dependencies:
        if not isinstance(dep, Dependency):
            raise TypeError(f"dependencies must be Dependency objects, got {type(dep).__name__}")
        if not dep.members:
            raise ValueError(f"dependency {dep.name!r} has no members")
        if dep.size is not None:
            size = check_int(f"dependency {dep.name!r} size", dep.size, minimum=1)
        else:
            first = next((m for m in dep.members if not _is_sliced(dep, m)), None)
            if first is None:
                raise ValueError(f"dependency {dep.name!r}: every member shares its leaf axis; give size")
            leaf = _leaf(flat, first.path, f"dependency {dep.name!r}")
            size = (np.shape(leaf)[_axis(leaf, first, dep.name)] - first.offset) // first.block
        if size < 1:
            raise ValueError(f"dependency {dep.name!r} holds no complete group")
        for m in dep.members:
            leaf = _leaf(flat, m.path, f"dependency {dep.name!r}")
            length = np.shape(leaf)[_axis(leaf, m, dep.name)]
            if not _is_sliced(dep, m) and length != m.offset + size * m.block:
                raise ValueError(f"dependency {dep.name!r}: member {m.path!r} axis {m.axis} has length {length}, "
                                 f"expected offset {m.offset} + {size} groups x block {m.block}")
        if dep.name in merged:
            prev_size, members, act = merged[dep.name]
            if prev_size != size or act != dep.activation:
                raise ValueError(f"dependencies named {dep.name!r} disagree: size {prev_size} vs {size}, "
                                 f"activation {act!r} vs {dep.activation!r}")
            members.extend(dep.members)
        else:
            merged[dep.name] = [size, list(dep.members), dep.activation]
    specs = [GroupSpec(name, size, tuple(members), act) for name, (size, members, act) in merged.items()]
    check_specs(params, specs)
    return specs


def _is_sliced(dep: Dependency, m: Member) -> bool:
    """True when other members of ``dep`` slice the same leaf axis at other offsets (fused qkv)."""
    return any(o is not m and o.path == m.path and o.axis == m.axis for o in dep.members)


def _numbered(flat: dict, prefix: str, leaf: str) -> list[str]:
    """``['<prefix>_0', '<prefix>_1', ...]`` for the leaves ``<prefix>_<i>/<leaf>``, numerically sorted."""
    pat = re.compile(rf"^{prefix}_(\d+)/{leaf}$")
    found = [pat.match(p) for p in flat]
    return [f"{prefix}_{n}" for n in sorted(int(mt.group(1)) for mt in found if mt)]


def mlp_groups(params) -> list[GroupSpec]:
    """Neuron groups of :class:`sparsejax.nn.MLP` (``dense_<i>`` ... ``head``): hidden unit ``j`` of
    layer ``i`` is ``dense_i/kernel[:, j]`` (out), ``dense_i/bias[j]`` (shift) and the next kernel's row ``j`` (in)."""
    flat = _flat(params)
    layers = _numbered(flat, "dense", "kernel")
    if not layers or "head/kernel" not in flat:
        raise ValueError(f"mlp_groups expects dense_<i>/kernel and head/kernel leaves, got {sorted(flat)}")
    deps = []
    for i, name in enumerate(layers):
        nxt = layers[i + 1] if i + 1 < len(layers) else "head"
        deps.append(Dependency(name, (Member(f"{name}/kernel", 1), Member(f"{name}/bias", 0, role="shift"),
                                      Member(f"{nxt}/kernel", 0, role="in"))))
    return build_groups(params, deps)


def bn_cnn_groups(params, residual: bool = False) -> list[GroupSpec]:
    """Filter groups of :class:`sparsejax.nn.BNCNN` (``conv_<i>`` + ``bn_<i>`` ... ``head``): filter ``j``
    of layer ``i`` is ``conv_i/kernel[..., j]`` and ``bn_i/scale[j]`` (out), ``bn_i/bias[j]`` (shift)
    and input channel ``j`` of the next conv or row ``j`` of ``head`` (in; after global pooling).
    With ``residual=True`` (the model's rule: a block whose width equals the previous one adds the
    previous output), the coupled channels form one group named after the first layer of the chain."""
    flat = _flat(params)
    layers = _numbered(flat, "conv", "kernel")
    if not layers or "head/kernel" not in flat:
        raise ValueError(f"bn_cnn_groups expects conv_<i>/kernel, bn_<i>/scale and head/kernel leaves, got {sorted(flat)}")
    deps, name = [], None
    for i, conv in enumerate(layers):
        bn = conv.replace("conv", "bn")
        nxt = layers[i + 1] if i + 1 < len(layers) else "head"
        width = np.shape(flat[f"{conv}/kernel"])[-1]
        tied = residual and i > 0 and width == np.shape(flat[f"{layers[i - 1]}/kernel"])[-1]
        name = name if tied else conv
        reader = (Member(f"{nxt}/kernel", -2, role="in", fold=nxt.replace("conv", "bn")) if nxt != "head"
                  else Member("head/kernel", 0, role="in"))
        deps.append(Dependency(name, (Member(f"{conv}/kernel", -1), Member(f"{bn}/scale", 0),
                                      Member(f"{bn}/bias", 0, role="shift"), reader)))
    return build_groups(params, deps)


def vit_head_groups(params, n_heads: int | Sequence[int] = 4, *, head_dim: int | None = None,
                    mlp_neurons: bool = False) -> list[GroupSpec]:
    """Attention-head groups of :class:`sparsejax.nn.ViT` / ``DecoderLM`` blocks (``block_<i>/attn``):
    head ``h`` is the q, k and v columns of the fused ``qkv`` kernel and bias (q/k/v kernels and q/k
    biases are ``out``, the v bias is the ``shift``) and rows ``[h*hd, (h+1)*hd)`` of ``out/kernel``
    (``in``), ``hd`` the head dim. Give ``n_heads`` (per block or one int; ``hd = qkv width / (3 n_heads)``)
    or ``head_dim``. ``mlp_neurons=True`` adds the MLP hidden units (``fc1`` column + bias, ``fc2`` row,
    GELU). The residual stream is not grouped (LayerNorm is not zero-invariant)."""
    flat = _flat(params)
    blocks = _numbered(flat, "block", "attn/qkv/kernel")
    if not blocks:
        raise ValueError(f"vit_head_groups expects block_<i>/attn/qkv/kernel leaves, got {sorted(flat)}")
    heads = [n_heads] * len(blocks) if isinstance(n_heads, (int, np.integer)) else list(n_heads)
    if len(heads) != len(blocks):
        raise ValueError(f"n_heads has {len(heads)} entries for {len(blocks)} blocks")
    deps = []
    for blk, h in zip(blocks, heads):
        width = np.shape(flat[f"{blk}/attn/qkv/kernel"])[1]
        if head_dim is None:
            h = check_int("n_heads", h, minimum=1)
            if width % (3 * h):
                raise ValueError(f"{blk}: qkv width {width} is not 3 * n_heads={h} * head_dim")
            hd = width // (3 * h)
        else:
            hd = check_int("head_dim", head_dim, minimum=1)
            if width % (3 * hd):
                raise ValueError(f"{blk}: qkv width {width} is not a multiple of 3 * head_dim={hd}")
        inner = width // 3
        qkv = f"{blk}/attn/qkv"
        members = [Member(f"{qkv}/kernel", 1, hd, j * inner) for j in range(3)]
        members += [Member(f"{qkv}/bias", 0, hd, j * inner, role="shift" if j == 2 else "out") for j in range(3)]
        members.append(Member(f"{blk}/attn/out/kernel", 0, hd, role="in"))
        deps.append(Dependency(f"{blk}/heads", tuple(members), "identity", size=inner // hd))
        if mlp_neurons:
            deps.append(Dependency(f"{blk}/mlp", (Member(f"{blk}/fc1/kernel", 1), Member(f"{blk}/fc1/bias", 0, role="shift"),
                                                  Member(f"{blk}/fc2/kernel", 0, role="in")), "gelu"))
    return build_groups(params, deps)


def group_slices(leaf: jax.Array, member: Member, size: int) -> jax.Array:
    """``(size, block * rest)`` view of the member's slices."""
    ax = member.axis % leaf.ndim
    moved = jnp.moveaxis(jnp.asarray(leaf), ax, 0)[member.offset : member.offset + size * member.block]
    return moved.reshape(size, -1)


@functools.partial(jax.jit, static_argnums=1)
def _group_norms(params, spec: GroupSpec) -> jax.Array:
    flat = _flat(params)
    sq = jnp.zeros((spec.size,), jnp.float32)
    for m in spec.members:
        sl = group_slices(flat[m.path], m, spec.size)
        sq = sq + jnp.sum(jnp.square(sl.astype(jnp.float32)), axis=1)
    return jnp.sqrt(sq)


def group_norms(params, spec: GroupSpec) -> jax.Array:
    """``(size,)`` L2 norm of each group over all its member slices (every role). Traced params: jitted
    per spec; concrete params: computed on the host (no compilation)."""
    check_specs(params, [spec])
    if any(is_traced(leaf) for leaf in jax.tree_util.tree_leaves(params)):
        return _group_norms(params, spec)
    flat = _flat(params)
    sq = np.zeros((spec.size,), np.float64)
    for m in spec.members:
        moved = np.moveaxis(np.asarray(flat[m.path], np.float64), m.axis % np.ndim(flat[m.path]), 0)
        sq += np.sum(np.square(moved[m.offset : m.offset + spec.size * m.block].reshape(spec.size, -1)), axis=1)
    return jnp.asarray(np.sqrt(sq), jnp.float32)


def _index_factor(xp, length: int, member: Member, size: int, factors) -> jax.Array:
    """Per-index factor along the member's axis: ``factors[i]`` on group ``i``'s slice, 1 elsewhere."""
    per = xp.repeat(factors, member.block)
    before = xp.ones((member.offset,), per.dtype)
    after = xp.ones((length - member.offset - size * member.block,), per.dtype)
    return xp.concatenate([before, per, after])


def _apply_per_index(params, specs: Sequence[GroupSpec], values: dict, combine, init, roles, xp=jnp):
    """Tree like ``params``: at each leaf, ``combine`` over its members of ``values[spec]`` broadcast along
    the member axis (starting from ``init(leaf)``); ``xp`` is ``jnp`` (traceable) or ``np`` (host)."""
    by_path: dict[str, list[tuple[GroupSpec, Member]]] = {}
    for spec in specs:
        for m in spec.members:
            if m.role in roles:
                by_path.setdefault(m.path, []).append((spec, m))

    def leaf_fn(path, leaf):
        out = init(leaf)
        for spec, m in by_path.get(path_str(path), ()):
            ax = m.axis % leaf.ndim
            vec = _index_factor(xp, leaf.shape[ax], m, spec.size, values[spec.name])
            shape = [1] * leaf.ndim
            shape[ax] = leaf.shape[ax]
            out = combine(out, vec.reshape(shape))
        return out

    return jax.tree_util.tree_map_with_path(leaf_fn, params)


@functools.partial(jax.jit, static_argnums=(1, 3))
def _scale_groups(params, spec: GroupSpec, factors, roles: tuple[str, ...]):
    return _apply_per_index(params, [spec], {spec.name: factors}, lambda a, b: a * b.astype(a.dtype),
                            lambda leaf: leaf, roles)


def scale_groups(params, spec: GroupSpec, factors: jax.Array, roles: Sequence[str] = ROLES):
    """``params`` with each group ``i``'s member slices (of the given roles) multiplied by ``factors[i]``.
    Jitted per spec; traceable in ``factors`` and ``params``."""
    factors = jnp.asarray(factors)
    if factors.shape != (spec.size,):
        raise ValueError(f"factors for GroupSpec {spec.name!r} must have shape ({spec.size},), got {factors.shape}")
    for r in roles:
        check_choice("roles", r, ROLES)
    check_specs(params, [spec])
    return _scale_groups(params, spec, factors, tuple(roles))


def _check_keep(specs: Sequence[GroupSpec], keep: dict) -> dict[str, jax.Array]:
    out = {}
    for spec in specs:
        if spec.name not in keep:
            raise ValueError(f"keep has no entry for GroupSpec {spec.name!r}; keys are {sorted(keep)}")
        k = keep[spec.name]
        if np.shape(k) != (spec.size,) or getattr(k, "dtype", None) != np.bool_:
            raise ValueError(f"keep[{spec.name!r}] must be a bool array of shape ({spec.size},), "
                             f"got {getattr(k, 'dtype', type(k).__name__)} {np.shape(k)}")
        out[spec.name] = k
    return out


def group_keep_mask(params, specs: Sequence[GroupSpec], keep: dict, roles: Sequence[str] = ROLES):
    """Bool mask shaped like ``params`` (no ``None`` leaves): False on the member slices (of ``roles``)
    of groups with ``keep[spec.name][i] == False``, True elsewhere. ``roles=("out",)`` gives the
    zero-masked network that :func:`extract` reproduces with the shifts folded."""
    for r in roles:
        check_choice("roles", r, ROLES)
    keep = _check_keep(specs, keep)
    if any(is_traced(k) for k in keep.values()):
        return _apply_per_index(params, specs, keep, jnp.logical_and, lambda leaf: jnp.ones(leaf.shape, bool), roles)
    host = _apply_per_index(params, specs, {k: np.asarray(v) for k, v in keep.items()}, np.logical_and,
                            lambda leaf: np.ones(leaf.shape, bool), roles, xp=np)
    return jax.tree_util.tree_map(jnp.asarray, host)


@jax.jit
def apply_mask(params, mask):
    """``params`` with masked-out entries set to zero."""
    return jax.tree_util.tree_map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), params, mask)


def kept_sizes(specs: Sequence[GroupSpec], keep: dict) -> dict[str, int]:
    """Number of kept groups per spec (the widths of the compact model)."""
    return {name: int(np.asarray(k).sum()) for name, k in _check_keep(specs, keep).items()}


def _sibling_bias(path: str) -> str:
    return path.rsplit("/", 1)[0] + "/bias"


def _fold(folded: dict, stats: dict | None, spec: GroupSpec, m: Member, const: np.ndarray, dropped, flat) -> None:
    """Add ``const @ W_in[dropped rows]`` (summed over a conv window) to the reader's bias, or subtract it
    from the running mean of the BN module ``m.fold``."""
    w = flat[m.path]
    ax = m.axis % w.ndim
    rows = np.moveaxis(w.take(m.indices(dropped), axis=ax), ax, 0)  # (n_drop, ..., out)
    contrib = np.tensordot(const, rows.reshape(rows.shape[0], -1, rows.shape[-1]).sum(axis=1), axes=1)
    if m.fold:
        key = f"{m.fold}/mean"
        if stats is None or key not in stats:
            raise ValueError(f"GroupSpec {spec.name!r}: folding into {key!r} needs batch_stats holding it")
        stats[key] = stats[key] - contrib.astype(stats[key].dtype)
        return
    bias = _sibling_bias(m.path)
    if bias not in folded:
        raise ValueError(f"GroupSpec {spec.name!r}: dropped channels emit a nonzero constant but {m.path!r} "
                         f"has no bias {bias!r} to fold it into")
    folded[bias] = folded[bias] + contrib.astype(folded[bias].dtype)


def extract(params, specs: Sequence[GroupSpec], keep: dict, batch_stats=None):
    """Compact network: every member slice of dropped groups is removed (shapes shrink).

    Returns ``(small_params, small_batch_stats)`` (``None`` when ``batch_stats`` is ``None``). The
    output equals the zero-masked network's (dropped groups' ``out`` weights zeroed), with each dropped
    channel's constant ``act(shift)`` folded into every ``in`` layer (see :class:`Member` ``fold``);
    batch statistics of module ``M`` shrink with ``M/scale``. Host-side (shapes depend on ``keep``)."""
    check_specs(params, specs)
    keep_np = {k: np.asarray(v) for k, v in _check_keep(specs, keep).items()}
    flat = {p: np.asarray(v) for p, v in _flat(params).items()}
    folded = dict(flat)
    stats = None if batch_stats is None else {p: np.asarray(v) for p, v in _flat(batch_stats).items()}
    drop_idx: dict[tuple[str, int], list[np.ndarray]] = {}
    for spec in specs:
        dropped = np.flatnonzero(~keep_np[spec.name])
        for m in spec.members:
            drop_idx.setdefault((m.path, m.axis % flat[m.path].ndim), []).append(m.indices(dropped))
        shifts = [m for m in spec.members if m.role == "shift"]
        if dropped.size == 0 or not shifts:
            continue
        values = [flat[m.path].take(m.indices(dropped), axis=m.axis % flat[m.path].ndim) for m in shifts]
        consts = [ACTIVATIONS[spec.activation](v) for v in values]
        if not any(np.any(c) for c in consts):
            continue
        if len(shifts) > 1:
            raise ValueError(f"GroupSpec {spec.name!r} has {len(shifts)} shift members (residual coupling) and "
                             f"nonzero shifts on dropped groups; zero them first (group_keep_mask with every role)")
        for m in spec.members:
            if m.role == "in":
                if m.block != shifts[0].block:
                    raise ValueError(f"GroupSpec {spec.name!r}: in-member {m.path!r} block {m.block} != "
                                     f"shift block {shifts[0].block}")
                _fold(folded, stats, spec, m, consts[0], dropped, flat)

    keep_idx: dict[tuple[str, int], np.ndarray] = {}
    for (path, ax), drops in drop_idx.items():
        mask = np.ones(flat[path].shape[ax], bool)
        mask[np.concatenate(drops)] = False
        keep_idx[(path, ax)] = np.flatnonzero(mask)

    def shrink(path, leaf):
        p = path_str(path)
        out = folded[p]
        for (q, ax), idx in keep_idx.items():
            if q == p:
                out = out.take(idx, axis=ax)
        return jnp.asarray(out, dtype=leaf.dtype)

    small = jax.tree_util.tree_map_with_path(shrink, params)
    if batch_stats is None:
        return small, None

    def shrink_stats(path, leaf):
        p = path_str(path)
        idx = keep_idx.get((f"{p.rsplit('/', 1)[0]}/scale", 0))
        out = stats[p] if idx is None else stats[p].take(idx, axis=-1)
        return jnp.asarray(out, dtype=leaf.dtype)

    return small, jax.tree_util.tree_map_with_path(shrink_stats, batch_stats)


def _eqn_flops(eqn) -> int:
    name = eqn.primitive.name
    if name == "dot_general":
        (lc, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        return 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(np.prod([lhs[d] for d in lc]))
    if name == "conv_general_dilated":
        rhs = eqn.invars[1].aval.shape
        out_feat = eqn.params["dimension_numbers"].rhs_spec[0]
        return 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(np.prod(rhs)) // rhs[out_feat]
    return 0


def _jaxpr_flops(jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        total += _eqn_flops(eqn)
        for sub in _subjaxprs(eqn):
            total += _jaxpr_flops(sub)
    return total


def _subjaxprs(eqn):
    """Jaxprs nested in an equation's params (pjit, custom_jvp/vjp calls, scan/cond bodies)."""
    for v in eqn.params.values():
        for item in v if isinstance(v, (tuple, list)) else (v,):
            if hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
                yield item.jaxpr
            elif hasattr(item, "eqns"):
                yield item


def params_flops(apply_fn: Callable, variables, x) -> dict[str, int]:
    """``{"params": number of entries in variables["params"] (or all of variables), "flops": 2 x the
    multiply-adds of every matmul and convolution of apply_fn(variables, x)}`` (from the jaxpr; one batch)."""
    tree = variables["params"] if isinstance(variables, dict) and "params" in variables else variables
    n = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree_util.tree_leaves(tree))
    jaxpr = jax.make_jaxpr(apply_fn)(variables, x)
    return {"params": n, "flops": _jaxpr_flops(jaxpr.jaxpr)}


def count_params_flops(apply_fn: Callable, variables, small_apply_fn: Callable, small_variables, x) -> dict[str, float]:
    """Params and FLOPs of a network before and after extraction (per batch ``x``) and their ratios."""
    before = params_flops(apply_fn, variables, x)
    after = params_flops(small_apply_fn, small_variables, x)
    return {"params_before": before["params"], "params_after": after["params"], "flops_before": before["flops"],
            "flops_after": after["flops"], "params_ratio": after["params"] / before["params"],
            "flops_ratio": after["flops"] / max(before["flops"], 1)}
