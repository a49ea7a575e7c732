"""The causal block-sparse attention kernel (interpret mode) equals its jnp reference for every
S2-Attention pattern, visits exactly the kept blocks, differentiates like the reference, rejects bad
masks, and lowers for CUDA (Triton) and TPU (splash attention) on a CPU host."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.kernels import block_sparse_attention, block_sparse_attention_reference
from sparsejax.kernels._util import TPU_CUSTOM_CALL, TRITON_CUSTOM_CALL, export_text
from sparsejax.llm.s2_attention import dense_block_mask, local_block_mask, s2_block_mask


def _qkv(seed, b, t, h, hkv, d, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.standard_normal((b, t, n, d)), dtype) for n in (h, hkv, hkv))


def _dense_attention(q, k, v, allowed):
    """Brute force: per (batch, head, query) softmax over the allowed keys (numpy, f64)."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    b, t, h, d = q.shape
    g = h // k.shape[2]
    out = np.zeros_like(q)
    for bb in range(b):
        for hh in range(h):
            for i in range(t):
                keys = np.flatnonzero(allowed[hh if allowed.shape[0] > 1 else 0, i])
                s = k[bb, keys, hh // g] @ q[bb, i, hh] / np.sqrt(d)
                p = np.exp(s - s.max())
                out[bb, i, hh] = (p / p.sum()) @ v[bb, keys, hh // g]
    return out


NB = 5  # T = 70 with block 16: a ragged last block
PATTERNS = {  # 4 query heads each
    "s2_hetero": s2_block_mask(4, NB, local_blocks=1, vert_stride=4),
    "s2_homo": np.repeat(s2_block_mask(4, NB, local_blocks=2, vert_stride=2, homo_head=True), 4, 0),
    "s2_dense_heads": s2_block_mask(4, NB, local_blocks=1, vert_stride=3, num_dense_heads=1),
    "local": local_block_mask(4, NB, 2),
    "dense": dense_block_mask(4, NB),
}


def _check(q, k, v, m, tol):
    y, visits = block_sparse_attention(q, k, v, m, block_size=16, interpret=True, debug_counts=True)
    assert y.dtype == q.dtype
    ref = block_sparse_attention_reference(q, k, v, m, block_size=16)
    np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(ref, np.float32), atol=tol)
    # the program of (b, h, i) ran exactly the kept blocks of row i of head h's mask
    np.testing.assert_array_equal(np.asarray(visits), np.broadcast_to(m.sum(-1), visits.shape))
    bm = np.repeat(np.repeat(np.broadcast_to(m, (q.shape[2], NB, NB)), 16, 1), 16, 2)[:, :70, :70]
    allowed = bm & np.tril(np.ones((70, 70), bool))
    np.testing.assert_allclose(np.asarray(ref, np.float32), _dense_attention(q, k, v, allowed), atol=tol)
    return y


def test_kernel_matches_reference_and_brute_force_for_every_pattern():
    """All patterns in one call (one compile): 20 heads, 4 per pattern."""
    m = np.concatenate(list(PATTERNS.values()))
    q, k, v = _qkv(0, 1, 70, 20, 20, 16)
    y = _check(q, k, v, m, 2e-5)
    dense = jax.nn.dot_product_attention(q[:, :, 16:], k[:, :, 16:], v[:, :, 16:], is_causal=True)
    np.testing.assert_allclose(np.asarray(y[:, :, 16:]), np.asarray(dense), atol=2e-5)


def test_gqa_pattern_shared_per_kv_group_in_bf16():
    m = s2_block_mask(4, NB, local_blocks=1, vert_stride=2, num_kv_heads=2)
    _check(*_qkv(1, 1, 70, 4, 2, 16, jnp.bfloat16), m, 3e-2)


def test_gradients_match_reference():
    m = s2_block_mask(2, 3, local_blocks=1, vert_stride=2)
    q, k, v = _qkv(2, 1, 48, 2, 2, 16)

    def grads(fn):
        return jax.jit(jax.grad(lambda q, k, v: jnp.sum(jnp.sin(fn(q, k, v, m, block_size=16))),
                                argnums=(0, 1, 2)))(q, k, v)

    kern = grads(lambda *a, **kw: block_sparse_attention(*a, interpret=True, **kw))
    for a, b in zip(kern, grads(block_sparse_attention_reference)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_bad_masks_and_shapes_are_rejected():
    q, k, v = _qkv(3, 1, 32, 2, 2, 16)
    upper = np.ones((2, 2, 2), bool)
    with pytest.raises(ValueError, match="not causal"):
        block_sparse_attention(q, k, v, upper, block_size=16, interpret=True)
    no_diag = dense_block_mask(2, 2)
    no_diag[1, 1, 1] = False
    with pytest.raises(ValueError, match="misses the diagonal block of head 1, query block 1"):
        block_sparse_attention_reference(q, k, v, no_diag, block_size=16)
    with pytest.raises(ValueError, match="needs 2"):
        block_sparse_attention(q, k, v, dense_block_mask(2, 3), block_size=16, interpret=True)
    with pytest.raises(ValueError, match="multiple of kv heads"):
        block_sparse_attention(q, *_qkv(3, 1, 32, 3, 3, 16)[1:], dense_block_mask(2, 2), block_size=16)
    with pytest.raises(ValueError, match="MMA tiles >= 16"):
        block_sparse_attention(q, k, v, dense_block_mask(2, 4), block_size=8, backend="triton", interpret=False)


@pytest.mark.slow
def test_splash_attention_interpret_matches_reference():
    m = s2_block_mask(2, 2, local_blocks=1, vert_stride=2)
    q, k, v = _qkv(4, 1, 256, 2, 2, 32)
    y = block_sparse_attention(q, k, v, m, block_size=128, backend="tpu", interpret=True)
    np.testing.assert_allclose(np.asarray(y), np.asarray(block_sparse_attention_reference(q, k, v, m, block_size=128)),
                               atol=2e-5)


@pytest.mark.parametrize("platform, custom_call, block, d", [("cuda", TRITON_CUSTOM_CALL, 64, 64),
                                                             ("tpu", TPU_CUSTOM_CALL, 128, 128)])
def test_block_sparse_attention_lowers(platform, custom_call, block, d):
    """The real Pallas -> Triton lowering (CUDA) and the splash-attention Mosaic lowering (TPU) on CPU."""
    m = s2_block_mask(4, 4, local_blocks=1, vert_stride=4)
    q = jax.ShapeDtypeStruct((2, 4 * block, 4, d), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((2, 4 * block, 2 if platform == "cuda" else 4, d), jnp.bfloat16)
    backend = "triton" if platform == "cuda" else "tpu"
    text = export_text(lambda q, k, v: block_sparse_attention(q, k, v, m, block_size=block, backend=backend,
                                                              interpret=False), q, kv, kv, platform=platform)
    assert text.count(f"stablehlo.custom_call @{custom_call}(") == 1
