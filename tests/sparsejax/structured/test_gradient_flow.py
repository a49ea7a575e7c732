import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.structured import (
    exponential_mask_decay,
    is_nm_sparse,
    linear_mask_decay,
    nm_mask,
    nm_recipe,
    sr_ste,
    ste_sparse,
    stepwise_structure_decay,
    structure_decay_levels,
)

PARAMS = {"w": jax.random.normal(jax.random.key(0), (8, 3)), "b": jnp.ones(3)}


def test_linear_and_exponential_endpoints():
    lin = linear_mask_decay(0.1, begin_step=5)
    assert float(lin(0)) == 1.0 and float(lin(5)) == 1.0
    assert float(lin(10)) == pytest.approx(0.5) and float(lin(15)) == 0.0 and float(lin(100)) == 0.0
    ex = exponential_mask_decay(0.2, begin_step=5)
    assert float(ex(0)) == 1.0 and float(ex(5)) == 1.0
    assert float(ex(15)) == pytest.approx(np.exp(-2.0), rel=1e-5)
    assert float(ex(105)) == pytest.approx(np.exp(-20.0), rel=1e-4)  # still representable in float32
    with pytest.raises(ValueError, match="decay rate must be > 0"):
        linear_mask_decay(0.0)


def test_structure_levels_and_stepwise_schedule():
    assert structure_decay_levels(1, 16) == (15, 8, 4, 2, 1)  # P7's 1:16 example
    assert structure_decay_levels(2, 4) == (3, 2)
    assert structure_decay_levels(1, 8) == (7, 4, 2, 1)
    sched = stepwise_structure_decay(1, 8, begin_step=10, end_step=50)  # 4 frames of 10 steps
    got = [int(sched(t)) for t in (0, 9, 10, 19, 20, 30, 40, 49, 50, 500)]
    assert got == [8, 8, 7, 7, 4, 2, 1, 1, 1, 1]
    with pytest.raises(ValueError, match=r"end_step \(10\) must be > begin_step \(10\)"):
        stepwise_structure_decay(1, 8, 10, 10)


@pytest.mark.parametrize("method", ["srste", "mask_decay_linear", "mask_decay_exponential",
                                    "structure_decay_stepwise"])
def test_recipe_phases(method):
    r = nm_recipe(method, 1, 4, total_steps=100, dense_steps=10, finetune_steps=20, axis=0)
    np.testing.assert_allclose(r.sparsify(PARAMS, 0)["w"], PARAMS["w"])  # dense phase
    target = jnp.where(nm_mask(PARAMS["w"], 1, 4, axis=0), PARAMS["w"], 0)
    for t in (80, 99):  # fine-tune phase: exactly the binary target N:M weights
        w = r.sparsify(PARAMS, t)["w"]
        np.testing.assert_allclose(w, target)
        assert is_nm_sparse(w, 1, 4, axis=0)
    np.testing.assert_array_equal(r.sparsify(PARAMS, 50)["b"], PARAMS["b"])
    assert float(r.mask_value(0)) == 1.0 and float(r.mask_value(80)) == 0.0
    assert int(r.n_at(0)) == 4 and int(r.n_at(80)) == 1


def test_mask_decay_mid_phase_scales_pruned_weights():
    r = nm_recipe("mask_decay_linear", 1, 4, total_steps=100, dense_steps=0, finetune_steps=0, axis=0,
                  decay_rate="per_T")
    e = nm_mask(PARAMS["w"], 1, 4, axis=0)
    np.testing.assert_allclose(r.sparsify(PARAMS, 25)["w"], PARAMS["w"] * jnp.where(e, 1.0, 0.75), rtol=1e-6)


def test_straight_through_gradient_is_identity():
    mask = nm_mask(PARAMS, 1, 4, axis=0)
    g = jax.grad(lambda p: jnp.sum(ste_sparse(p, mask, 0.3)["w"] * jnp.arange(24.0).reshape(8, 3)))(PARAMS)
    np.testing.assert_allclose(g["w"], jnp.arange(24.0).reshape(8, 3))


def test_sr_ste_adds_the_sparse_refined_term():
    tx = optax.chain(sr_ste(1, 4, lambda_w=0.5, axis=0, begin_step=1), optax.sgd(1.0))
    state = tx.init(PARAMS)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, PARAMS)
    upd, state = tx.update(zeros, state, PARAMS)  # step 0 < begin_step: no term
    np.testing.assert_allclose(upd["w"], 0.0)
    upd, state = tx.update(zeros, state, PARAMS)
    e = nm_mask(PARAMS["w"], 1, 4, axis=0)
    np.testing.assert_allclose(upd["w"], -0.5 * jnp.where(e, 0.0, PARAMS["w"]), rtol=1e-6)
    np.testing.assert_allclose(upd["b"], 0.0)
    with pytest.raises(ValueError, match="params"):
        tx.update(zeros, state)


def test_recipe_errors():
    with pytest.raises(ValueError, match="method"):
        nm_recipe("magic", 1, 4, total_steps=10)
    with pytest.raises(ValueError, match="no decay phase"):
        nm_recipe("srste", 1, 4, total_steps=10, dense_steps=5, finetune_steps=5)


def test_geometric_structure_decay_keeps_density_and_shrinks_groups():
    from sparsejax.structured import geometric_structure_levels, is_nm_sparse, nm_recipe

    assert geometric_structure_levels(1, 8) == ((8, 64), (4, 32), (2, 16), (1, 8))  # official "fine" decay
    assert geometric_structure_levels(1, 16, max_m=32) == ((2, 32), (1, 16))
    with pytest.raises(ValueError, match="does not fit"):
        geometric_structure_levels(1, 8, max_m=4)
    recipe = nm_recipe("structure_decay_geometric", 1, 8, total_steps=100, dense_steps=10, finetune_steps=10)
    w = {"w": jax.random.normal(jax.random.PRNGKey(0), (64, 4))}
    f = jax.jit(recipe.mask_at)
    assert int(f(w, 5)["w"].sum()) == 256  # dense phase
    for t, (n, m) in zip([12, 35, 57, 80, 95], [(8, 64), (4, 32), (2, 16), (1, 8), (1, 8)]):
        mask = np.asarray(f(w, t)["w"])
        assert mask.sum() == 32 and is_nm_sparse(mask, n, m) and int(recipe.n_at(t)) == n
    assert not is_nm_sparse(np.asarray(f(w, 12)["w"]), 1, 8)  # the coarse level is not yet 1:8
    assert f._cache_size() == 1


def test_mask_decay_uses_the_official_coefficient_by_default():
    from sparsejax.structured import OFFICIAL_DECAY_COEF, nm_recipe

    r = nm_recipe("mask_decay_linear", 2, 4, total_steps=1000, dense_steps=100, finetune_steps=100)
    assert float(r.mask_value(600)) == pytest.approx(1 - OFFICIAL_DECAY_COEF * 500)
    short = nm_recipe("mask_decay_linear", 2, 4, total_steps=1000, dense_steps=100, finetune_steps=100,
                      decay_rate="per_T")
    assert float(short.mask_value(500)) == pytest.approx(1 - 400 / 800)
    with pytest.raises(ValueError, match="decay rate must be > 0"):  # 0.0 was silently replaced by the default
        nm_recipe("mask_decay_linear", 2, 4, total_steps=1000, decay_rate=0.0)


def test_densify_structure_decay_fixes_n_and_grows_density():
    from sparsejax.structured import densify_structure_levels, geometric_structure_levels

    assert densify_structure_levels(2, 4) == ((2, 32), (2, 16), (2, 8), (2, 4))  # official "densify"
    assert densify_structure_levels(1, 16, max_m=32) == ((1, 32), (1, 16))
    assert geometric_structure_levels(2, 4) == ((16, 32), (8, 16), (4, 8), (2, 4))  # always 4 frames
    recipe = nm_recipe("structure_decay_densify", 2, 4, total_steps=100, dense_steps=20, finetune_steps=0)
    w = {"w": jax.random.normal(jax.random.PRNGKey(1), (64, 3))}
    f = jax.jit(recipe.mask_at)
    for t, (n, m) in zip([25, 45, 65, 85, 99], [(2, 32), (2, 16), (2, 8), (2, 4), (2, 4)]):
        mask = np.asarray(f(w, t)["w"])
        assert mask.sum() == 3 * 64 * n // m and is_nm_sparse(mask, n, m)
    assert f._cache_size() == 1
