"""SliceGPT: exact LayerNorm fold and rotations (float64, 1e-6), s = 0 identity, PCA, slicing shapes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.core import param_count
from sparsejax.llm import fold_layernorm, pca_calc, rotate_and_slice, sliced_dim, slicegpt

D, V = 32, 23


@pytest.fixture(scope="module")
def lm64(fwd):
    """(params, config, tokens, calibration windows, reference logits) in float64."""
    from sparsejax.llm import init_lm

    with jax.enable_x64(True):
        params, config = init_lm(jax.random.PRNGKey(0), V, d_model=D, n_layers=2, n_heads=4, max_len=16)
        params = jax.tree_util.tree_map(lambda x: x.astype(jnp.float64), params)
        rng = np.random.default_rng(0)
        for b in params["blocks"] + [params]:
            for name in ("ln1", "ln2", "ln_f"):
                if name in b:
                    b[name] = {"scale": jnp.asarray(1 + 0.3 * rng.standard_normal(D)),
                               "bias": jnp.asarray(0.2 * rng.standard_normal(D))}
        params["lm_head"]["bias"] = jnp.asarray(0.1 * rng.standard_normal(V))
        tok = jnp.asarray(rng.integers(0, V, (3, 12)), jnp.int32)
        calib = jnp.asarray(rng.integers(0, V, (8, 12)), jnp.int32)
        yield params, config, tok, calib, fwd(params, tok, config=config)


def test_layernorm_fold_to_rmsnorm_leaves_logits_unchanged(lm64, fwd):
    params, config, tok, _, ref = lm64
    folded, cfg = fold_layernorm(params, config)
    assert cfg.norm == "rmsnorm" and cfg.norm_dim == D and folded["ln_f"] == {} and folded["blocks"][0]["ln1"] == {}
    np.testing.assert_allclose(fwd(folded, tok, config=cfg), ref, atol=1e-6, rtol=0)
    for b in folded["blocks"]:  # residual writers are mean-free over the output dimension
        np.testing.assert_allclose(b["fc2"]["kernel"].mean(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(b["out"]["bias"].mean(), 0.0, atol=1e-12)


@pytest.mark.parametrize("rotation", ["pca", "random", "none"])
def test_any_orthogonal_rotation_without_slicing_leaves_logits_unchanged(lm64, fwd, rotation):
    params, config, tok, calib, ref = lm64
    folded, cfg = fold_layernorm(params, config)
    rotated = rotate_and_slice(folded, cfg, calib, D, rotation=rotation, seed=3)
    np.testing.assert_allclose(fwd(rotated, tok, config=cfg), ref, atol=1e-6, rtol=0)
    # the shortcut matrices are orthogonal (D x D) and not the identity (a rotation really happened)
    sc = np.asarray(rotated["blocks"][0]["attn_shortcut"])
    np.testing.assert_allclose(sc @ sc.T, np.eye(D), atol=1e-10)
    if rotation != "none":
        assert not np.allclose(sc, np.eye(D))


def test_slicing_at_zero_sparsity_is_the_identity(lm64, fwd):
    params, config, tok, calib, ref = lm64
    sliced, cfg = slicegpt(params, config, calib, 0.0)
    assert sliced["tok_embed"].shape == (V, D)
    np.testing.assert_allclose(fwd(sliced, tok, config=cfg), ref, atol=1e-6, rtol=0)


def test_sliced_shapes_and_parameter_count(lm64, fwd):
    params, config, tok, calib, ref = lm64
    sliced, cfg = slicegpt(params, config, calib, 0.3)
    d = sliced_dim(D, 0.3)  # int(0.7 * 32) = 22 -> 16
    assert d == 16
    b0, b1 = sliced["blocks"]
    assert sliced["tok_embed"].shape == (V, d) and sliced["pos_embed"].shape == (16, d)
    assert b0["qkv"]["kernel"].shape == (d, 3 * D) and b0["out"]["kernel"].shape == (D, d)
    assert b0["attn_shortcut"].shape == (d, d) and b0["mlp_shortcut"].shape == (d, d)
    assert b1["fc2"]["kernel"].shape == (4 * D, D) and b1["mlp_shortcut"].shape == (d, D)  # head not sliced
    assert sliced["lm_head"]["kernel"].shape == (D, V)
    f = 4 * D
    per_block = d * 3 * D + 3 * D + D * d + d + d * f + f + f * d + d + 2 * d * d
    per_block_last = per_block - (f * d + d + d * d) + (f * D + D + d * D)
    expected = V * d + 16 * d + per_block + per_block_last + D * V + V
    assert param_count(sliced) == expected
    logits = fwd(sliced, tok, config=cfg)
    assert np.isfinite(np.asarray(logits)).all() and not np.allclose(logits, ref, atol=1e-6)


def test_pca_calc_sorted_orthogonal_and_damped():
    x = np.random.default_rng(1).standard_normal((5, 7, 6)) * np.arange(1, 7)
    vals, q = pca_calc(x)
    flat = x.reshape(-1, 6)
    h = flat.T @ flat
    expected = np.sort(np.linalg.eigvalsh(h))[::-1] + 0.01 * np.mean(np.diag(h))
    np.testing.assert_allclose(vals, expected, rtol=1e-12)
    np.testing.assert_allclose(q.T @ q, np.eye(6), atol=1e-12)
    assert np.all(np.diff(vals) <= 0)


def test_sliced_dim_rounds_down_to_multiples_of_8_and_rejects_bad_input():
    assert [sliced_dim(64, s) for s in (0.0, 0.1, 0.2, 0.25, 0.3, 0.4)] == [64, 56, 48, 48, 40, 32]
    with pytest.raises(ValueError, match="sparsity"):
        sliced_dim(64, 1.0)
    with pytest.raises(ValueError, match="leaves no dimension"):
        sliced_dim(16, 0.6)


def test_bad_models_are_rejected(lm64):
    params, config, _, calib, _ = lm64
    folded, cfg = fold_layernorm(params, config)
    with pytest.raises(ValueError, match="needs a LayerNorm model"):
        fold_layernorm(folded, cfg)
    with pytest.raises(ValueError, match="parameter-free RMSNorm"):
        rotate_and_slice(params, config, calib, 16)
    with pytest.raises(ValueError, match="rotation"):
        rotate_and_slice(folded, cfg, calib, 16, rotation="svd")
