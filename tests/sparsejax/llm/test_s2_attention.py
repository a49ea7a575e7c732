"""S2-Attention block patterns: the official dkernel semantics, coverage of the causal mask by the
union of heads, vert_stride = 1 is dense, every query row keeps its diagonal block, per-head density
has the closed form, GQA / dense-head / homogeneous options, and the pluggable attention hook of
DecoderLM."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.llm.s2_attention import (
    attention_fns,
    dense_block_mask,
    local_block_mask,
    matched_local_blocks,
    pattern_stats,
    s2_block_mask,
    union_covers_causal,
)
from sparsejax.nn import DecoderLM

CONFIGS = [(4, 16, 1, 4), (8, 16, 2, 8), (8, 33, 1, 4), (16, 12, 3, 8), (4, 9, 2, 2)]  # H, nb, local, stride


def _causal(nb):
    return np.tril(np.ones((nb, nb), bool))


def test_small_pattern_by_hand():
    """H=2, vert_stride=2, local=1: head 0 keeps the even key blocks, head 1 the odd ones, plus the diagonal."""
    m = s2_block_mask(2, 4, local_blocks=1, vert_stride=2)
    expect0 = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 1, 1]], bool)
    expect1 = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]], bool)
    np.testing.assert_array_equal(m, np.stack([expect0, expect1]))


@pytest.mark.parametrize("h, nb, local, stride", CONFIGS)
def test_union_of_heads_covers_causal_mask_and_diagonal_kept(h, nb, local, stride):
    assert h >= stride
    m = s2_block_mask(h, nb, local_blocks=local, vert_stride=stride)
    assert m.shape == (h, nb, nb)
    np.testing.assert_array_equal(m.any(0), _causal(nb))
    assert union_covers_causal(m)
    assert not (m & ~_causal(nb)).any()  # causal
    assert np.diagonal(m, axis1=1, axis2=2).all()  # every query row sees its own block
    assert not union_covers_causal(local_block_mask(h, nb, local)) or local >= nb


def test_fewer_heads_than_stride_leaves_gaps():
    """dkernel's step = max(1, stride // H): H=2, stride=8 -> shifts 0 and 4, residues 1-3, 5-7 uncovered."""
    m = s2_block_mask(2, 16, local_blocks=1, vert_stride=8)
    assert not union_covers_causal(m)
    assert m[:, 15, 1].sum() == 0 and m[0, 15, 8] and m[1, 15, 4]


@pytest.mark.parametrize("h, nb, local", [(4, 10, 1), (2, 7, 3)])
def test_vert_stride_one_is_dense(h, nb, local):
    np.testing.assert_array_equal(s2_block_mask(h, nb, local_blocks=local, vert_stride=1), dense_block_mask(h, nb))


@pytest.mark.parametrize("h, nb, local, stride", CONFIGS + [(2, 20, 2, 8)])
def test_per_head_density_matches_closed_form(h, nb, local, stride):
    """Row i of head h keeps min(i+1, L) local blocks plus the stripe blocks j <= i-L with
    j = r (mod stride), r = (-h*step) mod stride: floor((i-L-r)/stride)+1 of them when i-L >= r."""
    m = s2_block_mask(h, nb, local_blocks=local, vert_stride=stride)
    step = max(1, stride // h)
    for hh in range(h):
        r = (-hh * step) % stride
        for i in range(nb):
            far = (i - local - r) // stride + 1 if i - local >= r else 0
            assert m[hh, i].sum() == min(i + 1, local) + far


def test_homogeneous_gqa_and_dense_head_options():
    homo = s2_block_mask(4, 12, local_blocks=1, vert_stride=4, homo_head=True)
    assert homo.shape == (1, 12, 12)
    np.testing.assert_array_equal(homo[0], s2_block_mask(4, 12, local_blocks=1, vert_stride=4)[0])
    assert not union_covers_causal(homo)
    gqa = s2_block_mask(8, 12, local_blocks=1, vert_stride=4, num_kv_heads=4)
    for g in range(4):  # the two query heads of a kv group share one pattern
        np.testing.assert_array_equal(gqa[2 * g], gqa[2 * g + 1])
    assert len({gqa[i].tobytes() for i in range(8)}) == 4
    dense_last = s2_block_mask(4, 12, local_blocks=1, vert_stride=4, num_dense_heads=1)
    np.testing.assert_array_equal(dense_last[3], _causal(12))
    np.testing.assert_array_equal(dense_last[:3], s2_block_mask(4, 12, local_blocks=1, vert_stride=4)[:3])
    with pytest.raises(ValueError, match="homo_head=True cannot have dense heads"):
        s2_block_mask(4, 12, local_blocks=1, vert_stride=4, homo_head=True, num_dense_heads=1)
    with pytest.raises(ValueError, match="local_blocks must be >= 1"):
        s2_block_mask(4, 12, local_blocks=0, vert_stride=4)


def test_pattern_stats_and_matched_local_window():
    dense = pattern_stats(dense_block_mask(4, 16), 128, 8)
    assert dense["block_fraction"] == dense["pair_fraction"] == dense["kv_fraction"] == 1.0
    s2 = s2_block_mask(4, 16, local_blocks=2, vert_stride=4)
    st = pattern_stats(s2, 128, 8)
    assert st["covers_causal"] and 0 < st["pair_fraction"] < st["block_fraction"] + 0.1 < 1
    # last query block: 2 local blocks + 14/4-ish stripe blocks of 8 tokens each, over 128 tokens
    expect = np.mean([s2[h, -1].sum() * 8 / 128 for h in range(4)])
    assert st["kv_fraction"] == pytest.approx(expect)
    w = matched_local_blocks(s2)
    counts = {ww: local_block_mask(1, 16, ww).sum() for ww in range(1, 17)}
    assert abs(counts[w] - s2.sum() / 4) == min(abs(c - s2.sum() / 4) for c in counts.values())


def test_decoder_lm_attention_hook_dense_equals_builtin_and_sparse_is_causal():
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 11, (2, 16)), jnp.int32)
    changed = tokens.at[:, 10].set((tokens[:, 10] + 1) % 11)
    kw = dict(vocab_size=11, d_model=8, n_layers=2, n_heads=4, max_len=16)
    base = DecoderLM(**kw)
    params = base.init(jax.random.key(0), tokens)
    s2 = s2_block_mask(4, 4, local_blocks=1, vert_stride=4)
    models = [base, DecoderLM(**kw, attention_fn=attention_fns([dense_block_mask(4, 4)], 4)[0]),
              DecoderLM(**kw, attention_fn=attention_fns([None, s2], 4))]
    out = [jax.jit(m.apply)(params, jnp.concatenate([tokens, changed])) for m in models]
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(out[0]), atol=1e-5)  # dense hook == built-in
    assert not np.allclose(out[2], out[0], atol=1e-4)
    np.testing.assert_allclose(np.asarray(out[2][2:, :10]), np.asarray(out[2][:2, :10]), atol=1e-5)  # causal
    with pytest.raises(ValueError, match="one per layer"):
        DecoderLM(**kw, attention_fn=(None,)).init(jax.random.key(0), tokens)


def test_pair_fraction_counts_the_token_mask_exactly():
    from sparsejax.kernels.block_sparse_attention import token_mask

    for t in (128, 70):
        m = s2_block_mask(4, -(-t // 16), local_blocks=1, vert_stride=4)
        pairs = token_mask(m, t, 16).sum(axis=(1, 2)).mean()
        assert pattern_stats(m, t, 16)["pair_fraction"] == pytest.approx(pairs / (t * (t + 1) / 2))
