"""Exact counts, densities against hand computations, and every error path of the core masks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsejax as sj


def params_tree():
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    return {
        "conv": {"kernel": jax.random.normal(k[0], (3, 3, 4, 8)), "bias": jnp.zeros(8)},
        "dense": {"kernel": jax.random.normal(k[1], (32, 16)), "bias": jnp.zeros(16)},
        "embed": {"embedding": jax.random.normal(k[2], (10, 4))},
        "head": {"kernel": jax.random.normal(k[3], (16, 10)), "scale": jnp.ones(10)},
    }


SIZES = {"conv": 3 * 3 * 4 * 8, "dense": 32 * 16, "head": 16 * 10}


def test_default_rule_selects_kernels_only():
    dens = sj.uniform_densities(params_tree(), 0.5)
    assert dens["conv"]["bias"] is None and dens["head"]["scale"] is None
    assert dens["embed"]["embedding"] is None
    assert dens["conv"]["kernel"] == pytest.approx(0.5)


def test_predicate_overrides_default():
    dens = sj.uniform_densities(params_tree(), 0.5, predicate=lambda path, leaf: path.startswith("embed"))
    assert dens["embed"]["embedding"] == pytest.approx(0.5)
    assert dens["dense"]["kernel"] is None


def test_erk_matches_hand_computation():
    params = params_tree()
    s = 0.3
    raw = {"conv": (3 + 3 + 4 + 8) / SIZES["conv"], "dense": (32 + 16) / SIZES["dense"], "head": (16 + 10) / SIZES["head"]}
    budget = (1 - s) * sum(SIZES.values())
    dense = set()
    while True:  # Evci et al. 2020: make the largest layer dense while its density would exceed 1
        eps = (budget - sum(SIZES[n] for n in dense)) / sum(raw[n] * SIZES[n] for n in SIZES if n not in dense)
        over = [n for n in SIZES if n not in dense and eps * raw[n] > 1]
        if not over:
            break
        dense.add(max(over, key=lambda n: raw[n]))
    expected = {n: 1.0 if n in dense else eps * raw[n] for n in SIZES}
    got = sj.erk_densities(params, s)
    for n in SIZES:
        assert got[n]["kernel"] == pytest.approx(expected[n], rel=1e-5)
    assert "head" in dense  # the small head saturates at this sparsity: the dense branch is exercised


def test_er_uses_last_two_dims():
    got = sj.er_densities(params_tree(), 0.5)
    ratio = got["conv"]["kernel"] / got["dense"]["kernel"]
    assert ratio == pytest.approx(((4 + 8) / 32) / ((32 + 16) / 512), rel=1e-5)


@pytest.mark.parametrize("fn", [sj.uniform_densities, sj.er_densities, sj.erk_densities])
@pytest.mark.parametrize("s", [0.0, 0.3, 0.9, 0.99])
def test_weighted_density_hits_target(fn, s):
    dens = fn(params_tree(), s)
    total = sum(dens[n]["kernel"] * SIZES[n] for n in SIZES) / sum(SIZES.values())
    assert total == pytest.approx(1 - s, abs=1e-5)


def test_dense_first_last_keeps_budget():
    order = ["conv/kernel", "dense/kernel", "head/kernel"]
    dens = sj.erk_densities(params_tree(), 0.5, dense_first_last=True, layer_order=order)
    assert dens["conv"]["kernel"] == 1.0 and dens["head"]["kernel"] == 1.0
    flipped = sj.erk_densities(params_tree(), 0.2, dense_first_last=True, layer_order=["dense/kernel", "conv/kernel",
                                                                                      "head/kernel"])
    assert flipped["dense"]["kernel"] == 1.0 and flipped["conv"]["kernel"] < 1.0
    total = sum(dens[n]["kernel"] * SIZES[n] for n in SIZES) / sum(SIZES.values())
    assert total == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ValueError, match="first and last"):
        sj.uniform_densities(params_tree(), 0.9, dense_first_last=True, layer_order=order)


@settings(max_examples=12, deadline=None)  # each new count compiles the radix select again
@given(s=st.floats(0.0, 0.99), seed=st.integers(0, 2**16), dist=st.sampled_from(["uniform", "er", "erk"]))
def test_random_mask_exact_counts(s, seed, dist):
    params = params_tree()
    dens = {"uniform": sj.uniform_densities, "er": sj.er_densities, "erk": sj.erk_densities}[dist](params, s)
    mask = sj.random_mask(jax.random.PRNGKey(seed), params, dens)
    for n in SIZES:
        assert int(mask[n]["kernel"].sum()) == int(np.round(np.float32(dens[n]["kernel"]) * SIZES[n]))
    assert mask["dense"]["bias"] is None


def test_random_mask_depends_on_key_and_float_sparsity():
    params = params_tree()
    a = sj.random_mask(jax.random.PRNGKey(0), params, 0.5)
    b = sj.random_mask(jax.random.PRNGKey(1), params, 0.5)
    assert not np.array_equal(a["dense"]["kernel"], b["dense"]["kernel"])
    assert sj.sparsity(a) == pytest.approx(0.5, abs=1e-3)


@settings(max_examples=12, deadline=None)
@given(s=st.floats(0.0, 0.95), seed=st.integers(0, 1000))
def test_magnitude_mask_keeps_largest(s, seed):
    params = jax.tree_util.tree_map(lambda x: x + 0.01 * seed, params_tree())
    mask = sj.magnitude_mask(params, s)
    for n in SIZES:
        w = np.abs(np.asarray(params[n]["kernel"])).ravel()
        m = np.asarray(mask[n]["kernel"]).ravel()
        assert m.sum() == int(np.round(np.float32(1 - s) * w.size))
        if 0 < m.sum() < w.size:
            assert w[m].min() >= w[~m].max()


def test_global_magnitude_single_threshold():
    params = params_tree()
    mask = sj.magnitude_mask(params, 0.7, scope="global")
    kept = np.concatenate([np.abs(np.asarray(params[n]["kernel"]))[np.asarray(mask[n]["kernel"])] for n in SIZES])
    pruned = np.concatenate([np.abs(np.asarray(params[n]["kernel"]))[~np.asarray(mask[n]["kernel"])] for n in SIZES])
    assert kept.min() >= pruned.max()
    assert kept.size == round(0.3 * sum(SIZES.values()))


def test_apply_mask_and_sparsity_and_report():
    params = params_tree()
    mask = sj.magnitude_mask(params, 0.75)
    pruned = sj.apply_mask(params, mask)
    assert sj.sparsity(pruned) == pytest.approx(sj.sparsity(mask), abs=1e-6)
    np.testing.assert_array_equal(pruned["head"]["scale"], params["head"]["scale"])
    rep = sj.report(params, mask)
    row = {r["path"]: r for r in rep.as_dicts()}["dense/kernel"]
    assert row["nonzeros"] == 128 and row["size"] == 512 and row["density"] == 0.25
    assert "dense/kernel" in str(rep) and "total" in str(rep)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_sparsity_out_of_range(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sj.uniform_densities(params_tree(), bad)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sj.magnitude_mask(params_tree(), bad, scope="global")


def test_mask_errors_name_the_leaf():
    params = params_tree()
    mask = sj.magnitude_mask(params, 0.5)
    bad_shape = {**mask, "dense": {"kernel": jnp.ones((2, 2), bool), "bias": None}}
    with pytest.raises(ValueError, match="dense/kernel"):
        sj.apply_mask(params, bad_shape)
    bad_dtype = {**mask, "dense": {"kernel": jnp.ones((32, 16)), "bias": None}}
    with pytest.raises(TypeError, match="dense/kernel"):
        sj.apply_mask(params, bad_dtype)
    with pytest.raises(ValueError, match="structure"):
        sj.apply_mask(params, {"dense": mask["dense"]})
    nan = {**params, "head": {"kernel": params["head"]["kernel"].at[0, 0].set(jnp.nan), "scale": jnp.ones(10)}}
    with pytest.raises(ValueError, match="head/kernel.*NaN"):
        sj.magnitude_mask(nan, 0.5)
    with pytest.raises(ValueError, match="scope"):
        sj.magnitude_mask(params, 0.5, scope="row")
    with pytest.raises(TypeError, match="global"):
        sj.magnitude_mask(params, sj.uniform_densities(params, 0.5), scope="global")
    dens = sj.uniform_densities(params, 0.5)
    dens["dense"]["kernel"] = 1.5
    with pytest.raises(ValueError, match="dense/kernel"):
        sj.random_mask(jax.random.PRNGKey(0), params, dens)


_TOP_K = jax.jit(sj.top_k_mask)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.sampled_from([1, 7, 33]), kind=st.sampled_from(["normal", "ties", "inf", "int", "denormal"]))
def test_top_k_mask_equals_a_stable_argsort_ranking(data, n, kind):
    """The radix select keeps exactly the entries a stable descending argsort ranks first (ties by index,
    -0.0 == 0.0, -inf last, denormals by value), for a traced k (one compile per size)."""
    seed = data.draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    scores = {"normal": lambda: rng.normal(size=n).astype(np.float32),
              "ties": lambda: (rng.integers(-2, 3, n) * rng.choice([1.0, -0.0], n)).astype(np.float32),
              "inf": lambda: np.where(rng.random(n) < 0.3, -np.inf, rng.normal(size=n)).astype(np.float32),
              "int": lambda: rng.integers(-5, 5, n).astype(np.int32),
              "denormal": lambda: (rng.normal(size=n) * 1e-40).astype(np.float32)}[kind]()
    k = data.draw(st.integers(0, n))
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    want = np.zeros(n, bool)
    want[order[:k]] = True
    got = np.asarray(_TOP_K(jnp.asarray(scores), jnp.int32(k)))
    np.testing.assert_array_equal(got, want)
