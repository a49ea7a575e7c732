"""Bad input to sparsejax.core / structured / pruning / data (issue #12): every case raises a clear
ValueError/TypeError naming the argument, instead of a silent wrong result."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparsejax as sj
from sparsejax.data import batch_indices, decode, grammar_corpus, lm_windows, load_digits, num_batches
from sparsejax.data import synthetic_classification
from sparsejax.pruning import drop_fraction_at, rigl
from sparsejax.structured import (
    GroupCompressed, NMCompressed, group_compress, group_decompress, group_mask, nm_compress, nm_decompress,
)

W = jax.random.normal(jax.random.PRNGKey(0), (8, 4))
PARAMS = {"dense": {"kernel": W, "bias": jnp.zeros(4)}}
NM = nm_compress(W, 2, 4)
GC = group_compress(jnp.where(group_mask(W, 4, 0.5, axis=0), W, 0), 4)


def with_inf(x):
    return {"dense": {"kernel": x.at[0, 0].set(jnp.inf), "bias": jnp.zeros(4)}}


CASES = [
    # schedules
    ("polynomial_sparsity target > 1", lambda: sj.polynomial_sparsity(5, 1.5, 0, 10), ValueError, "target_sparsity"),
    ("polynomial_sparsity power < 0", lambda: sj.polynomial_sparsity(5, 0.5, 0, 10, power=-1), ValueError, "power"),
    ("polynomial_sparsity end < begin", lambda: sj.polynomial_sparsity(5, 0.5, 10, 2), ValueError, "end_step"),
    ("polynomial_sparsity float step bounds", lambda: sj.polynomial_sparsity(5, 0.5, 0.5, 10), TypeError,
     "begin_step"),
    ("drop_fraction_at > 1", lambda: drop_fraction_at(3, 2.0, 10), ValueError, "drop_fraction"),
    ("drop_fraction_at bad schedule", lambda: drop_fraction_at(3, 0.3, 10, "linear"), ValueError, "schedule"),
    ("drop_fraction_at end_step 0", lambda: drop_fraction_at(3, 0.3, 0), ValueError, "end_step"),
    ("keep_count density > 1", lambda: sj.keep_count(1.5, 100), ValueError, "density"),
    ("keep_count float size", lambda: sj.keep_count(0.5, 10.5), TypeError, "size"),
    ("top_k_mask k < 0", lambda: sj.top_k_mask(W, -1), ValueError, "k must be >= 0"),
    ("top_k_mask k > size", lambda: sj.top_k_mask(W, 33), ValueError, "k must be"),
    ("top_k_mask float k", lambda: sj.top_k_mask(W, 2.5), TypeError, "k must be an int"),
    ("top_k_mask NaN scores", lambda: sj.top_k_mask(W.at[0, 0].set(jnp.nan), 3), ValueError, "NaN"),
    ("top_k_mask float array k", lambda: sj.top_k_mask(W, jnp.float32(2)), TypeError, "k must have a"),
    # magnitude scores
    ("magnitude_mask +inf weight", lambda: sj.magnitude_mask(with_inf(W), 0.5), ValueError, "dense/kernel.*inf"),
    ("magnitude_mask NaN weight", lambda: sj.magnitude_mask({"dense": {"kernel": W.at[1, 1].set(jnp.nan),
                                                                       "bias": jnp.zeros(4)}}, 0.5),
     ValueError, "dense/kernel.*NaN"),
    ("magnitude_mask global +inf", lambda: sj.magnitude_mask(with_inf(W), 0.5, "global"), ValueError, "inf"),
    ("magnitude_mask bad scope", lambda: sj.magnitude_mask(PARAMS, 0.5, "row"), ValueError, "scope"),
    ("magnitude_mask bad type", lambda: sj.magnitude_mask(PARAMS, 0.5, sparsity_type="diag"), ValueError,
     "unknown sparsity_type"),
    ("random_mask type not dividing", lambda: sj.random_mask(jax.random.PRNGKey(0), PARAMS, 0.5,
                                                             sparsity_type="nm_1,3"), ValueError,
     "dense/kernel.*not divisible by m=3"),
    ("gradual_pruning bad method", lambda: sj.gradual_pruning(optax.sgd(0.1), 0.5, 0, 10, 1, "l2"), ValueError,
     "method"),
    ("gradual_pruning initial > target", lambda: sj.gradual_pruning(optax.sgd(0.1), 0.5, 0, 10, 1,
                                                                    initial_sparsity=0.7), ValueError,
     "initial_sparsity"),
    ("gradual_pruning float frequency", lambda: sj.gradual_pruning(optax.sgd(0.1), 0.5, 0, 10, 1.5), TypeError,
     "frequency"),
    ("erk negative power scale", lambda: sj.erk_densities(PARAMS, 0.5, erk_power_scale=-1.0), ValueError,
     "erk_power_scale"),
    ("overrides not a dict", lambda: sj.uniform_densities(PARAMS, 0.5, overrides=[("x", 0.1)]), TypeError,
     "overrides"),
    ("override sparsity 1", lambda: sj.uniform_densities(PARAMS, 0.5, overrides={"dense/*": 1.0}), ValueError,
     r"overrides\['dense/\*'\]"),
    ("create typo", lambda: sj.create({"algorithm": "rigl", "sparsity": 0.5, "update_frq": 2}, optax.sgd(0.1)),
     ValueError, "update_frq"),
    ("rigl float update_every", lambda: rigl(optax.sgd(0.1), sj.magnitude_mask(PARAMS, 0.5), update_every=1.5,
                                             end_step=10), TypeError, "update_every"),
    # compressed formats: indices that gather would clamp or drop
    ("nm_decompress index >= m", lambda: nm_decompress(NM._replace(indices=NM.indices.at[0, 0].set(5))), ValueError,
     r"indices must lie in \[0, 4\)"),
    ("nm_decompress negative index", lambda: nm_decompress(NM._replace(indices=NM.indices.at[0, 0].set(-1))),
     ValueError, "indices must lie in"),
    ("nm_decompress duplicate index", lambda: nm_decompress(NM._replace(indices=NM.indices.at[1, 0].set(
        NM.indices[0, 0]))), ValueError, "strictly increasing"),
    ("nm_decompress float index", lambda: nm_decompress(NM._replace(indices=NM.indices.astype(jnp.float32))),
     TypeError, "indices must have a"),
    ("nm_decompress wrong n", lambda: nm_decompress(NM._replace(n=3)), ValueError, "values must have shape"),
    ("nm_decompress wrong shape", lambda: nm_decompress(NM._replace(shape=(12, 4))), ValueError,
     "values must have shape"),
    ("group_decompress index >= G", lambda: group_decompress(GC._replace(group_idx=GC.group_idx.at[0, 0].set(7))),
     ValueError, r"group_idx must lie in \[0, 2\)"),
    ("group_decompress bad g", lambda: group_decompress(GC._replace(g=3)), ValueError, "does not divide K=8"),
    ("group_decompress values shape", lambda: group_decompress(GC._replace(values=GC.values[:, :2])), ValueError,
     "values must have shape"),
    ("group_decompress duplicate group", lambda: group_decompress(GroupCompressed(
        jnp.ones((2, 4, 1)), jnp.zeros((2, 1), jnp.uint8), 4, (8, 1))), ValueError, "lists a group twice"),
    # data
    ("num_batches batch > n", lambda: num_batches(10, 11), ValueError, "batch_size must be"),
    ("num_batches float", lambda: num_batches(10, 2.5), TypeError, "batch_size must be an int"),
    ("batch_indices negative step", lambda: batch_indices(jax.random.PRNGKey(0), -1, 10, 2), ValueError, "step"),
    ("batch_indices float step", lambda: batch_indices(jax.random.PRNGKey(0), 1.5, 10, 2), TypeError, "step"),
    ("load_digits test_size 1", lambda: load_digits(test_size=1.0), ValueError, "test_size"),
    ("load_digits float seed", lambda: load_digits(seed=0.5), TypeError, "seed"),
    ("synthetic too many classes", lambda: synthetic_classification(n_features=2, n_classes=8), ValueError,
     "n_classes"),
    ("grammar_corpus float n", lambda: grammar_corpus(2.5), TypeError, "n_sentences"),
    ("lm_windows float seq_len", lambda: lm_windows(grammar_corpus(3), 2.5), TypeError, "seq_len"),
    ("decode negative id", lambda: decode(np.array([-1, 3])), ValueError, "tokens must lie in"),
    ("decode id past vocab", lambda: decode(np.array([3, 10_000])), ValueError, "tokens must lie in"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_clearly(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_traced_nm_indices_checked_for_dtype_only():
    """Under jit the index range of a compressed format cannot be checked (documented precondition);
    a concrete call checks it, and the jitted decompress of a valid format equals the eager one."""
    f = jax.jit(lambda v, i: nm_decompress(NM._replace(values=v, indices=i)))
    np.testing.assert_array_equal(f(NM.values, NM.indices), nm_decompress(NM))
    with pytest.raises(TypeError, match="indices must have a"):
        f(NM.values, NM.indices.astype(jnp.float32))
