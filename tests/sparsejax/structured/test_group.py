"""Fine-grained group sparsity (P28): group norms, exact kept counts, structure, compression."""
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsejax.structured.group import (
    group_compress,
    group_decompress,
    group_mask,
    group_masks,
    group_nbytes,
    group_norms,
    is_group_sparse,
)


def test_group_norms_closed_form():
    w = np.arange(24, dtype=np.float32).reshape(6, 4)
    norms = np.asarray(group_norms(w, 3, axis=0))  # (N=4, G=2)
    expect = np.stack([np.linalg.norm(w[:3], axis=0), np.linalg.norm(w[3:], axis=0)], -1)
    np.testing.assert_allclose(norms, expect, rtol=1e-6)


@settings(max_examples=10, deadline=None)
@given(g=st.sampled_from([1, 4]), groups=st.sampled_from([3, 6]), cols=st.just(5),
       sparsity=st.sampled_from([0.0, 0.3, 0.5, 0.75]), balanced=st.booleans(), seed=st.integers(0, 1000))
def test_group_mask_exact_count_structure_and_ranking(g, groups, cols, sparsity, balanced, seed):
    w = np.random.default_rng(seed).standard_normal((groups * g, cols)).astype(np.float32)
    mask = np.asarray(group_mask(w, g, sparsity, axis=0, balanced=balanced))
    assert bool(is_group_sparse(mask, g, axis=0))
    keep = mask.reshape(groups, g, cols).all(1)  # (G, N)
    norms = np.linalg.norm(w.reshape(groups, g, cols), axis=1)
    if balanced:
        k = max(1, round(groups * (1 - sparsity)))
        assert np.all(keep.sum(0) == k)
        for c in range(cols):  # every kept group beats every pruned group of its column
            if k < groups:
                assert norms[keep[:, c], c].min() >= norms[~keep[:, c], c].max()
    else:
        k = max(1, round(groups * cols * (1 - sparsity)))
        assert keep.sum() == k
        if k < keep.size:
            assert norms[keep].min() >= norms[~keep].max()


@settings(max_examples=10, deadline=None)
@given(g=st.sampled_from([2, 4]), groups=st.sampled_from([4, 6]), sparsity=st.sampled_from([0.25, 0.5, 0.8]),
       seed=st.integers(0, 1000))
def test_compress_round_trip_and_footprint(g, groups, sparsity, seed):
    w = np.random.default_rng(seed).standard_normal((groups * g, 6)).astype(np.float32)
    mask = group_mask(w, g, sparsity, axis=0)
    c = group_compress(w, g, mask)
    np.testing.assert_array_equal(group_decompress(c), np.where(mask, w, 0))
    slots = int(np.asarray(mask).reshape(groups, g, 6).all(1).sum(0).max())
    assert c.values.shape == (slots, g, 6) and c.group_idx.dtype == jnp.uint8
    assert group_nbytes(c) == slots * g * 6 * 4 + slots * 6


def test_group_masks_pytree_and_errors():
    params = {"dense": {"kernel": jnp.ones((8, 3)), "bias": jnp.ones(3)}}
    masks = group_masks(params, 4, 0.5, balanced=True)
    assert masks["dense"]["bias"] is None
    assert masks["dense"]["kernel"].shape == (8, 3) and int(masks["dense"]["kernel"].sum()) == 12
    with pytest.raises(ValueError, match="not divisible by group size"):
        group_mask(jnp.ones((6, 2)), 4, 0.5, axis=0)
    with pytest.raises(ValueError, match="sparsity must be"):
        group_mask(jnp.ones((8, 2)), 4, 1.0, axis=0)
    with pytest.raises(ValueError, match="keeps round.*= 0 of 4 groups"):  # was silently clamped to 0.75
        group_mask(jnp.ones((16, 1)), 4, 0.9, axis=0)
    with pytest.raises(ValueError, match="dense/kernel.*= 0 of 6 groups"):
        group_masks(params, 4, 0.95)
    with pytest.raises(ValueError, match="ndim >= 2"):
        group_mask(jnp.ones(8), 4, 0.5, axis=0)
    with pytest.raises(ValueError, match="2-D"):
        group_compress(jnp.ones((8, 2, 2)), 4)


@pytest.mark.slow  # heavy for the 15-minute default suite; `pytest -m slow` runs it
def test_group_sparsity_experiment_end_to_end(tmp_path):
    from experiments.runner import run_experiment

    res = run_experiment("group_sparsity", "smoke", out=tmp_path, quiet=True,
                         overrides=["dense_steps=20", "finetune_steps=5", "sparsities=[0.5]", "group_sizes=[8]",
                                    "hidden=[32]", "swaps=50"])
    metrics = res.get("metrics", res)
    assert {"rows", "summary", "claims"} <= set(metrics)
    methods = {r["method"] for r in metrics["rows"]}
    assert methods == {"dense", "unstructured", "2:4", "group"}
    assert all(abs(r["measured_sparsity"] - 0.5) < 1e-6 for r in metrics["rows"] if r["method"] != "dense")
    groups = {(r["group_axis"], r["rearranged"]): r for r in metrics["rows"] if r["method"] == "group"}
    assert set(groups) == {("input", False), ("input", True), ("output", False), ("output", True)}
    for axis in ("input", "output"):  # the rearrangement never keeps less weight energy
        assert groups[(axis, True)]["kept_energy"] >= groups[(axis, False)]["kept_energy"] - 1e-9
    assert set(metrics["claims"]["0.5"]["rearrangement_gain"]) == {"group g=8@0.5", "group-out g=8@0.5"}
    assert list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize("axis,balanced", [(-2, False), (-2, True), (-1, False)])
def test_group_masks_on_conv_kernels_match_brute_force(axis, balanced):
    # a (3, 3, in=8, out=4) conv kernel: groups of 4 consecutive input (or output) channels at
    # every (kh, kw, other channel) position, ranked by L2 norm over the whole kernel (layer-wise)
    # or per output column / input row (balanced)
    w = np.random.default_rng(3).standard_normal((3, 3, 8, 4)).astype(np.float32)
    mask = np.asarray(group_masks({"conv": {"kernel": w}}, 4, 0.5, balanced=balanced, axis=axis)["conv"]["kernel"])
    moved = np.moveaxis(w, axis, -1)
    norms = np.linalg.norm(moved.reshape(*moved.shape[:-1], -1, 4), axis=-1)  # (3, 3, other, G)
    if balanced:  # G = 2 groups per column, keep the larger one
        keep = norms >= np.sort(norms, axis=-1)[..., -1:]
    else:
        keep = norms >= np.sort(norms.reshape(-1))[norms.size // 2]
    expect = np.moveaxis(np.repeat(keep, 4, axis=-1).reshape(moved.shape), -1, axis)
    np.testing.assert_array_equal(mask, expect)
    assert bool(is_group_sparse(mask, 4, axis=axis)) and mask.mean() == 0.5
