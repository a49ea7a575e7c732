"""Bad-input cases for the public API of ``sparsejax`` (table of tests/test_api_probe.py).

Row: ``(entry, label, thunk, names[, heavy])``; ``names`` is a regex the clear error must match (the
argument or leaf it names). ``heavy`` rows compile a model or train; the default test skips them.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sparsejax as sj
from sparsejax import data, kernels, nn, pruning, quant, structured, train

NAN = float("nan")
KEY = jax.random.PRNGKey(0)
W = jax.random.normal(KEY, (8, 4))
W_NAN = W.at[0, 0].set(NAN)
PARAMS = {"dense": {"kernel": W, "bias": jnp.zeros(4)}}
PARAMS_NAN = {"dense": {"kernel": W_NAN, "bias": jnp.zeros(4)}}
MASK = sj.magnitude_mask(PARAMS, 0.5)
WRONG_TREE = {"other": {"kernel": jnp.ones((8, 4), bool)}}
SGD = optax.sgd(0.1)
X = jax.random.normal(KEY, (8, 6))
Y = jnp.arange(8) % 3


def lazy(f):
    return functools.cache(f)


@lazy
def mlp():
    model = nn.MLP(num_classes=3, hidden=(4,))
    return model, model.init(KEY, X)


@lazy
def train_setup():
    model, variables = mlp()
    step = train.make_train_step(model.apply, SGD)
    state = train.TrainState.create(variables, SGD)
    return step, state


def _apply(x):
    model, variables = mlp()
    return model.apply(variables, x)


@lazy
def block_sparse():
    return kernels.to_block_sparse(W, (2, 2))


@lazy
def qweight():
    return kernels.quantize_weight(W, 4, 4)


@lazy
def qbs():
    return kernels.to_quant_block_sparse(W, (2, 2), 4)


@lazy
def nm24():
    return kernels.to_nm24(jnp.where(structured.nm_mask(W, 2, 4, axis=0), W, 0))


@lazy
def gqsa():
    masks = quant.gqsa_masks(PARAMS, 4, 0.5)
    qstate = quant.gqsa_init(PARAMS, masks, 4, 4)
    return masks, qstate


@lazy
def gqsa_weight():
    mask = structured.group_mask(W, 4, 0.5, axis=0, balanced=True)
    scale, zero = quant.minmax_params(W, 4, 4)
    codes = quant.quantize(W, scale, zero, 4, 4)
    return quant.gqsa_pack(codes, scale, zero, mask, 4, 4), (codes, scale, zero, mask)


@lazy
def group_quant():
    return quant.group_quantize(W, 4, 4)


def scale_zero():
    return quant.minmax_params(W, 4, 4)


@lazy
def nm_c():
    return structured.nm_compress(W, 2, 4)


@lazy
def group_c():
    return structured.group_compress(jnp.where(structured.group_mask(W, 4, 0.5), W, 0), 4)


@lazy
def ift():
    model = structured.SparseIFTMLP(num_classes=3, hidden=(8,), family="wide", sparsity=0.5)
    return model, model.init(KEY, X)


@lazy
def dst_state():
    tx = pruning.rigl(SGD, MASK, update_every=2, end_step=10)
    return tx, tx.init(PARAMS)


def _loss(p, x, y):
    return jnp.mean((x @ p["dense"]["kernel"][:6]) ** 2)


CASES = [
    # ---- sparsejax.core
    ("sparsejax.core.uniform_densities", "sparsity > 1", lambda: sj.uniform_densities(PARAMS, 1.5), "sparsity"),
    ("sparsejax.core.uniform_densities", "string sparsity", lambda: sj.uniform_densities(PARAMS, "0.5"), "sparsity"),
    ("sparsejax.core.er_densities", "sparsity < 0", lambda: sj.er_densities(PARAMS, -0.1), "sparsity"),
    ("sparsejax.core.er_densities", "NaN sparsity", lambda: sj.er_densities(PARAMS, NAN), "sparsity"),
    ("sparsejax.core.erk_densities", "sparsity 2", lambda: sj.erk_densities(PARAMS, 2.0), "sparsity"),
    ("sparsejax.core.erk_densities", "power scale NaN", lambda: sj.erk_densities(PARAMS, 0.5, erk_power_scale=NAN),
     "erk_power_scale"),
    ("sparsejax.core.uniform_plus_densities", "unknown layer", lambda: sj.uniform_plus_densities(
        PARAMS, 0.5, layer_order=["nope/kernel"]), "layer_order"),
    ("sparsejax.core.uniform_plus_densities", "sparsity > 1", lambda: sj.uniform_plus_densities(
        PARAMS, 1.2, layer_order=["dense/kernel"]), "sparsity"),
    ("sparsejax.core.layer_order", "model not a module", lambda: sj.layer_order("mlp", X), "model"),
    ("sparsejax.core.random_mask", "sparsity > 1", lambda: sj.random_mask(KEY, PARAMS, 1.5), "densit|sparsity"),
    ("sparsejax.core.random_mask", "key not a key", lambda: sj.random_mask("key", PARAMS, 0.5), "key"),
    ("sparsejax.core.magnitude_mask", "sparsity > 1", lambda: sj.magnitude_mask(PARAMS, 1.5), "sparsity|densit"),
    ("sparsejax.core.magnitude_mask", "scores of another tree", lambda: sj.magnitude_mask(
        PARAMS, 0.5, scores=WRONG_TREE), "scores"),
    ("sparsejax.core.apply_mask", "mask of another tree", lambda: sj.apply_mask(PARAMS, WRONG_TREE), "mask"),
    ("sparsejax.core.apply_mask", "mask leaf wrong shape", lambda: sj.apply_mask(
        PARAMS, {"dense": {"kernel": jnp.ones((4, 8), bool), "bias": None}}), "mask"),
    ("sparsejax.core.keep_count", "density < 0", lambda: sj.keep_count(-0.1, 10), "density"),
    ("sparsejax.core.param_count", "not a tree of arrays", lambda: sj.core.param_count({"w": "abc"}), "params"),
    ("sparsejax.core.keep_count", "size < 0", lambda: sj.keep_count(0.5, -1), "size"),
    ("sparsejax.core.sparsity", "not a pytree of arrays", lambda: sj.sparsity("mask"), "mask_or_params"),
    ("sparsejax.core.top_k_mask", "k > size", lambda: sj.top_k_mask(W, 100), "k"),
    ("sparsejax.core.top_k_mask", "scores not an array", lambda: sj.top_k_mask([3.0, 1.0], 1), "scores"),
    ("sparsejax.core.report", "mask of another tree", lambda: sj.report(PARAMS, WRONG_TREE), "mask"),
    ("sparsejax.core.report", "value_bytes 0", lambda: sj.report(PARAMS, value_bytes=0), "value_bytes"),
    ("sparsejax.core.Report", "rows not a list", lambda: sj.Report(rows="x"), "rows"),
    ("sparsejax.core.compressed_nbytes", "unknown type", lambda: sj.compressed_nbytes(np.ones((4, 4)), "bogus"),
     "stype|sparsity.type|bogus"),
    ("sparsejax.core.compressed_nbytes", "value_bytes < 0", lambda: sj.compressed_nbytes(
        np.ones((4, 4)), "unstructured", -1), "value_bytes"),
    ("sparsejax.core.keep_mask", "mask of another tree", lambda: sj.keep_mask(SGD, WRONG_TREE).init(PARAMS), "mask"),
    ("sparsejax.core.keep_mask", "inner not a transform", lambda: sj.keep_mask("sgd", MASK), "inner"),
    ("sparsejax.core.masked", "mask of another tree", lambda: sj.masked(SGD, WRONG_TREE).init(PARAMS), "mask"),
    ("sparsejax.core.masked", "inner not a transform", lambda: sj.masked(None, MASK), "inner"),
    ("sparsejax.core.gradual_pruning", "target > 1", lambda: sj.gradual_pruning(SGD, 1.5, 0, 10, 1),
     "target_sparsity"),
    ("sparsejax.core.gradual_pruning", "frequency 0", lambda: sj.gradual_pruning(SGD, 0.5, 0, 10, 0), "frequency"),
    ("sparsejax.core.polynomial_sparsity", "initial < 0", lambda: sj.polynomial_sparsity(
        5, 0.5, 0, 10, initial_sparsity=-0.5), "initial_sparsity"),
    ("sparsejax.core.polynomial_sparsity", "string step", lambda: sj.polynomial_sparsity("5", 0.5, 0, 10), "step"),
    ("sparsejax.core.default_predicate", "path not a string", lambda: sj.default_predicate(3, W), "path"),
    ("sparsejax.core.NByM", "n > m", lambda: sj.NByM(3, 2), "n"),
    ("sparsejax.core.NByM", "float n", lambda: sj.NByM(2.5, 4), "n"),
    ("sparsejax.core.Block", "zero block", lambda: sj.Block((0, 2)), "block_shape"),
    ("sparsejax.core.Block", "1-d block", lambda: sj.Block((2,)), "block_shape"),
    ("sparsejax.core.Channel", "float axis", lambda: sj.Channel(axis=1.5), "axis"),
    ("sparsejax.core.Group", "g 0", lambda: sj.Group(0), "g"),
    ("sparsejax.core.Group", "float g", lambda: sj.Group(2.5), "g"),
    ("sparsejax.core.parse_sparsity_type", "n > m", lambda: sj.parse_sparsity_type("nm_5,4"), "n"),
    ("sparsejax.core.parse_sparsity_type", "unknown", lambda: sj.parse_sparsity_type("bogus"), "spec|sparsity.type"),
    ("sparsejax.core.create", "unknown algorithm", lambda: sj.create({"algorithm": "nope", "sparsity": 0.5}, SGD),
     "algorithm"),
    ("sparsejax.core.create", "config not a dict", lambda: sj.create("rigl", SGD), "config"),
    ("sparsejax.core.register_algorithm", "empty name", lambda: sj.register_algorithm("", lambda c, i: i), "name"),
    ("sparsejax.core.register_algorithm", "factory not callable", lambda: sj.register_algorithm("probe_x", 3),
     "factory"),
    ("sparsejax.core.ste_magnitude_pruning", "sparsity > 1", lambda: sj.ste_magnitude_pruning(SGD, 1.5), "sparsity"),
    ("sparsejax.core.ste_magnitude_pruning", "bad distribution", lambda: sj.ste_magnitude_pruning(
        SGD, 0.5, distribution="bogus"), "distribution"),
    ("sparsejax.core.saliency_scores", "grads of another tree", lambda: sj.saliency_scores(PARAMS, WRONG_TREE),
     "grads"),
    ("sparsejax.core.saliency_scores", "NaN grads", lambda: sj.saliency_scores(PARAMS, PARAMS_NAN), "grads"),
    ("sparsejax.core.snip_scores", "NaN batch", lambda: sj.snip_scores(_loss, PARAMS, X.at[0, 0].set(NAN), Y),
     "batch|loss"),
    ("sparsejax.core.snip_scores", "loss_fn not callable", lambda: sj.snip_scores(3, PARAMS, X, Y), "loss_fn"),
    ("sparsejax.core.grasp_scores", "NaN batch", lambda: sj.grasp_scores(_loss, PARAMS, X.at[0, 0].set(NAN), Y),
     "batch|loss"),
    ("sparsejax.core.grasp_scores", "loss_fn not callable", lambda: sj.grasp_scores(None, PARAMS, X, Y), "loss_fn"),
    ("sparsejax.core.activation_norms", "wrong feature size", lambda: sj.activation_norms(
        mlp()[0], mlp()[1], jnp.ones((4, 5))), "x", True),
    ("sparsejax.core.activation_norms", "model not a module", lambda: sj.activation_norms("mlp", {}, X), "model"),
    ("sparsejax.core.wanda_scores", "norms missing layer", lambda: sj.wanda_scores(PARAMS, {}), "norms"),
    ("sparsejax.core.wanda_scores", "norms wrong length", lambda: sj.wanda_scores(
        PARAMS, {"dense": jnp.ones(3)}), "norms"),
    ("sparsejax.core.wanda_mask", "sparsity > 1", lambda: sj.wanda_mask(PARAMS, PARAMS, 1.5), "sparsity"),
    ("sparsejax.core.wanda_mask", "scores of another tree", lambda: sj.wanda_mask(PARAMS, WRONG_TREE, 0.5), "scores"),
    ("sparsejax.core.ratios_from_scores", "sparsity < 0", lambda: sj.ratios_from_scores(PARAMS, PARAMS, -1.0),
     "sparsity"),
    ("sparsejax.core.ratios_from_scores", "NaN scores", lambda: sj.ratios_from_scores(PARAMS, PARAMS_NAN, 0.5),
     "scores"),
    # ---- sparsejax.data
    ("sparsejax.data.load_digits", "test_size < 0", lambda: data.load_digits(test_size=-0.1), "test_size"),
    ("sparsejax.data.load_digits", "string test_size", lambda: data.load_digits(test_size="0.2"), "test_size"),
    ("sparsejax.data.synthetic_classification", "n_samples 0", lambda: data.synthetic_classification(n_samples=0),
     "n_samples"),
    ("sparsejax.data.synthetic_classification", "float n_features", lambda: data.synthetic_classification(
        n_features=2.5), "n_features"),
    ("sparsejax.data.load_cifar10", "directory not a path", lambda: data.load_cifar10(123), "directory"),
    ("sparsejax.data.batch_indices", "batch_size 0", lambda: data.batch_indices(KEY, 0, 10, 0), "batch_size"),
    ("sparsejax.data.batch_indices", "batch > n", lambda: data.batch_indices(KEY, 0, 10, 11), "batch_size"),
    ("sparsejax.data.num_batches", "n < 0", lambda: data.num_batches(-1, 2), r"\bn\b"),
    ("sparsejax.data.num_batches", "batch_size 0", lambda: data.num_batches(10, 0), "batch_size"),
    ("sparsejax.data.grammar_corpus", "n_sentences 0", lambda: data.grammar_corpus(0), "n_sentences"),
    ("sparsejax.data.grammar_corpus", "max_len 1", lambda: data.grammar_corpus(3, max_len=1), "max_len"),
    ("sparsejax.data.lm_windows", "seq_len 0", lambda: data.lm_windows(data.grammar_corpus(3), 0), "seq_len"),
    ("sparsejax.data.lm_windows", "corpus not a corpus", lambda: data.lm_windows("text", 4), "corpus"),
    ("sparsejax.data.decode", "float tokens", lambda: data.decode(np.array([1.5, 3.0])), "tokens"),
    ("sparsejax.data.decode", "vocab not a tuple", lambda: data.decode(np.array([1, 3]), vocab=5), "vocab"),
    # ---- sparsejax.kernels
    ("sparsejax.kernels.to_block_sparse", "block not dividing", lambda: kernels.to_block_sparse(W, (3, 2)),
     "block_shape"),
    ("sparsejax.kernels.to_block_sparse", "mask wrong shape", lambda: kernels.to_block_sparse(
        W, (2, 2), jnp.ones((4, 8), bool)), "mask"),
    ("sparsejax.kernels.to_block_sparse", "NaN weight", lambda: kernels.to_block_sparse(W_NAN, (2, 2)), r"\bw\b"),
    ("sparsejax.kernels.from_block_sparse", "not a BlockSparse", lambda: kernels.from_block_sparse("x"), "bs"),
    ("sparsejax.kernels.from_block_sparse", "block row out of range", lambda: kernels.from_block_sparse(
        _replace(block_sparse(), block_rows=block_sparse().block_rows + 10)), "block_rows"),
    ("sparsejax.kernels.block_sparse_matmul", "x inner dim", lambda: kernels.block_sparse_matmul(
        jnp.ones((4, 5)), block_sparse()), r"\bx\b"),
    ("sparsejax.kernels.block_sparse_matmul", "block_m 0", lambda: kernels.block_sparse_matmul(
        jnp.ones((4, 8)), block_sparse(), block_m=0), "block_m"),
    ("sparsejax.kernels.block_sparse_matmul_reference", "x inner dim", lambda: kernels.block_sparse_matmul_reference(
        jnp.ones((4, 5)), block_sparse()), r"\bx\b"),
    ("sparsejax.kernels.block_sparse_matmul_reference", "x int dtype", lambda: kernels.block_sparse_matmul_reference(
        jnp.ones((2, 4, 8), jnp.int32), block_sparse()), r"\bx\b"),
    ("sparsejax.kernels.block_sparse_nbytes", "not a BlockSparse", lambda: kernels.block_sparse_nbytes("x"), "bs"),
    ("sparsejax.kernels.check_block_sparse", "block_ptr decreasing", lambda: kernels.check_block_sparse(
        _replace(block_sparse(), block_ptr=block_sparse().block_ptr[::-1])), "block_ptr"),
    ("sparsejax.kernels.check_block_sparse", "not a BlockSparse", lambda: kernels.check_block_sparse(3), "bs"),
    ("sparsejax.kernels.quantize_weight", "bits 0", lambda: kernels.quantize_weight(W, 0, 4), "bits"),
    ("sparsejax.kernels.quantize_weight", "g not dividing", lambda: kernels.quantize_weight(W, 4, 3), r"\bg\b"),
    ("sparsejax.kernels.quantize_weight", "NaN weight", lambda: kernels.quantize_weight(W_NAN, 4, 4), r"\bw\b"),
    ("sparsejax.kernels.quantized_from_codes", "codes out of range", lambda: kernels.quantized_from_codes(
        jnp.full((8, 4), 20, jnp.int32), *scale_zero(), 4, 4), "codes"),
    ("sparsejax.kernels.quantized_from_codes", "scale wrong shape", lambda: kernels.quantized_from_codes(
        jnp.zeros((8, 4), jnp.int32), jnp.ones((3, 4)), jnp.zeros((2, 4)), 4, 4), "scale"),
    ("sparsejax.kernels.dequantize_weight", "not a QuantizedWeight", lambda: kernels.dequantize_weight("x"), "qw"),
    ("sparsejax.kernels.quantized_matmul", "x inner dim", lambda: kernels.quantized_matmul(
        jnp.ones((4, 5)), qweight()), r"\bx\b"),
    ("sparsejax.kernels.quantized_matmul", "block_n 0", lambda: kernels.quantized_matmul(
        jnp.ones((4, 8)), qweight(), block_n=0), "block_n"),
    ("sparsejax.kernels.quantized_matmul_reference", "x inner dim", lambda: kernels.quantized_matmul_reference(
        jnp.ones((4, 5)), qweight()), r"\bx\b"),
    ("sparsejax.kernels.quantized_matmul_reference", "x int dtype", lambda: kernels.quantized_matmul_reference(
        jnp.ones((4, 8), jnp.int32), qweight()), r"\bx\b"),
    ("sparsejax.kernels.quantized_nbytes", "not a QuantizedWeight", lambda: kernels.quantized_nbytes(3), "qw"),
    ("sparsejax.kernels.to_quant_block_sparse", "bits 9", lambda: kernels.to_quant_block_sparse(W, (2, 2), 9),
     "bits"),
    ("sparsejax.kernels.to_quant_block_sparse", "block not dividing", lambda: kernels.to_quant_block_sparse(
        W, (3, 3), 4), "block_shape"),
    ("sparsejax.kernels.to_quant_block_sparse", "NaN weight", lambda: kernels.to_quant_block_sparse(
        W_NAN, (2, 2), 4), r"\bw\b"),
    ("sparsejax.kernels.dequantize_block_sparse", "not a QuantBlockSparse", lambda: kernels.dequantize_block_sparse(
        "x"), r"\bq\b"),
    ("sparsejax.kernels.block_sparse_quantized_matmul", "x inner dim", lambda: kernels.block_sparse_quantized_matmul(
        jnp.ones((4, 5)), qbs()), r"\bx\b"),
    ("sparsejax.kernels.block_sparse_quantized_matmul_reference", "x inner dim",
     lambda: kernels.block_sparse_quantized_matmul_reference(jnp.ones((4, 5)), qbs()), r"\bx\b"),
    ("sparsejax.kernels.SparseDense", "mask wrong shape", lambda: kernels.SparseDense.from_dense(
        PARAMS["dense"], jnp.ones((4, 8), bool), (2, 2)), "mask"),
    ("sparsejax.kernels.SparseDense", "block not dividing", lambda: kernels.SparseDense.from_dense(
        PARAMS["dense"], jnp.ones((8, 4), bool), (3, 3)), "block_shape"),
    ("sparsejax.kernels.QuantDense", "bits 0", lambda: kernels.QuantDense.from_dense(PARAMS["dense"], 0, g=4),
     "bits"),
    ("sparsejax.kernels.QuantDense", "g not dividing", lambda: kernels.QuantDense.from_dense(
        PARAMS["dense"], 4, g=3), r"\bg\b"),
    ("sparsejax.kernels.apply_with_layers", "layers not a dict", lambda: kernels.apply_with_layers(
        nn.MLP(num_classes=3), {}, X, layers=[]), "layers"),
    ("sparsejax.kernels.apply_with_layers", "unused layer path", lambda: kernels.apply_with_layers(
        mlp()[0], mlp()[1], X, layers={("nope",): None}), "layers|nope", True),
    ("sparsejax.kernels.to_nm24", "not 2:4", lambda: kernels.to_nm24(W), "2:4|w|mask"),
    ("sparsejax.kernels.to_nm24", "1-d weight", lambda: kernels.to_nm24(jnp.ones(8)), r"\bw\b"),
    ("sparsejax.kernels.from_nm24", "not an NM24", lambda: kernels.from_nm24("x"), r"\bc\b"),
    ("sparsejax.kernels.from_nm24", "meta out of range", lambda: kernels.from_nm24(
        _replace(nm24(), meta=nm24().meta + 7)), "meta"),
    ("sparsejax.kernels.nm24_matmul", "x inner dim", lambda: kernels.nm24_matmul(jnp.ones((4, 5)), nm24()),
     r"\bx\b"),
    ("sparsejax.kernels.nm24_matmul_reference", "x inner dim", lambda: kernels.nm24_matmul_reference(
        jnp.ones((4, 5)), nm24()), r"\bx\b"),
    ("sparsejax.kernels.nm24_nbytes", "not an NM24", lambda: kernels.nm24_nbytes(None), r"\bc\b"),
    # ---- sparsejax.nn
    ("sparsejax.nn.MLP", "num_classes 0", lambda: nn.MLP(num_classes=0).init(KEY, X), "num_classes", True),
    ("sparsejax.nn.MLP", "hidden 0", lambda: nn.MLP(num_classes=3, hidden=(0,)).init(KEY, X), "hidden", True),
    ("sparsejax.nn.MLP", "width < 0", lambda: nn.MLP(num_classes=3, width=-1.0).init(KEY, X), "width", True),
    ("sparsejax.nn.CNN", "num_classes 0", lambda: nn.CNN(num_classes=0).init(KEY, jnp.ones((1, 8, 8, 1))),
     "num_classes", True),
    ("sparsejax.nn.CNN", "rank-2 input", lambda: nn.CNN(num_classes=3).init(KEY, jnp.ones((1, 8))), r"\bx\b", True),
    ("sparsejax.nn.DecoderLM", "vocab 0", lambda: nn.DecoderLM(vocab_size=0, d_model=8, n_layers=1, n_heads=2).init(
        KEY, jnp.zeros((1, 4), jnp.int32)), "vocab_size", True),
    ("sparsejax.nn.DecoderLM", "token >= vocab", lambda: nn.DecoderLM(vocab_size=5, d_model=8, n_layers=1,
                                                                       n_heads=2).init(
        KEY, jnp.full((1, 4), 9, jnp.int32)), "tokens|vocab", True),
    ("sparsejax.nn.DecoderLM", "sequence > max_len", lambda: nn.DecoderLM(vocab_size=5, d_model=8, n_layers=1,
                                                                           n_heads=2, max_len=4).init(
        KEY, jnp.zeros((1, 6), jnp.int32)), "max_len", True),
    ("sparsejax.nn.ViT", "patch not dividing", lambda: nn.ViT(num_classes=3, patch_size=3, d_model=8, n_layers=1,
                                                             n_heads=2).init(KEY, jnp.ones((1, 8, 8, 1))),
     "patch_size", True),
    ("sparsejax.nn.ViT", "heads not dividing", lambda: nn.ViT(num_classes=3, d_model=8, n_layers=1, n_heads=3).init(
        KEY, jnp.ones((1, 8, 8, 1))), "n_heads", True),
    ("sparsejax.nn.TransformerBlock", "heads not dividing", lambda: nn.TransformerBlock(d_model=8, n_heads=3).init(
        KEY, jnp.ones((1, 4, 8))), "n_heads", True),
    ("sparsejax.nn.SelfAttention", "n_heads 0", lambda: nn.SelfAttention(d_model=8, n_heads=0).init(
        KEY, jnp.ones((1, 4, 8))), "n_heads", True),
    ("sparsejax.nn.SelfAttention", "rank-2 input", lambda: nn.SelfAttention(d_model=8, n_heads=2).init(
        KEY, jnp.ones((4, 8))), r"\bx\b", True),
    # ---- sparsejax.pruning
    ("sparsejax.pruning.dynamic_sparse", "unknown grow", lambda: pruning.dynamic_sparse(
        SGD, MASK, grow="bogus", update_every=1, end_step=10), "grow"),
    ("sparsejax.pruning.dynamic_sparse", "update_every 0", lambda: pruning.dynamic_sparse(
        SGD, MASK, grow="random", update_every=0, end_step=10, key=KEY), "update_every"),
    ("sparsejax.pruning.sparse_evolutionary_training", "unknown drop_rule",
     lambda: pruning.sparse_evolutionary_training(SGD, MASK, key=KEY, update_every=1, end_step=10,
                                                  drop_rule="bogus"), "drop_rule"),
    ("sparsejax.pruning.sparse_evolutionary_training", "drop_fraction > 1",
     lambda: pruning.sparse_evolutionary_training(SGD, MASK, key=KEY, update_every=1, end_step=10,
                                                  drop_fraction=1.5), "drop_fraction"),
    ("sparsejax.pruning.rigl", "drop_fraction < 0", lambda: pruning.rigl(
        SGD, MASK, update_every=1, end_step=10, drop_fraction=-0.1), "drop_fraction"),
    ("sparsejax.pruning.rigl", "mask of another tree", lambda: pruning.rigl(
        SGD, WRONG_TREE, update_every=1, end_step=10).init(PARAMS), "mask"),
    ("sparsejax.pruning.drop_and_grow", "weights wrong shape", lambda: pruning.drop_and_grow(
        MASK["dense"]["kernel"], jnp.ones((4, 8)), W, 0.3), "weights"),
    ("sparsejax.pruning.drop_and_grow", "zeta > 1", lambda: pruning.drop_and_grow(
        MASK["dense"]["kernel"], W, W, 1.5), "zeta"),
    ("sparsejax.pruning.drop_fraction_at", "begin > end", lambda: pruning.drop_fraction_at(3, 0.3, 10, begin_step=20),
     "begin_step|end_step"),
    ("sparsejax.pruning.drop_fraction_at", "NaN fraction", lambda: pruning.drop_fraction_at(3, NAN, 10),
     "drop_fraction"),
    ("sparsejax.pruning.sign_drop_and_grow", "scores wrong shape", lambda: pruning.sign_drop_and_grow(
        MASK["dense"]["kernel"], W, jnp.ones((4, 8)), 0.3), "grow_scores"),
    ("sparsejax.pruning.sign_drop_and_grow", "zeta < 0", lambda: pruning.sign_drop_and_grow(
        MASK["dense"]["kernel"], W, W, -0.1), "zeta"),
    ("sparsejax.pruning.reset_on_grown", "grown of another tree", lambda: pruning.reset_on_grown(
        optax.adam(0.1), optax.adam(0.1).init(PARAMS), WRONG_TREE), "grown"),
    ("sparsejax.pruning.imp", "target > 1", lambda: pruning.imp(PARAMS, lambda p, m, i: p, target_sparsity=1.5,
                                                               phases=2), "target_sparsity"),
    ("sparsejax.pruning.imp", "phases 0", lambda: pruning.imp(PARAMS, lambda p, m, i: p, target_sparsity=0.5,
                                                             phases=0), "phases"),
    ("sparsejax.pruning.make_retrain", "y shorter than x", lambda: pruning.make_retrain(
        _apply, X, Y[:4], steps=1, batch_size=2, key=KEY, optimizer=optax.sgd, schedule=lambda s: 0.1),
     r"\by\b|length"),
    ("sparsejax.pruning.make_retrain", "batch_size 0", lambda: pruning.make_retrain(
        _apply, X, Y, steps=1, batch_size=0, key=KEY, optimizer=optax.sgd, schedule=lambda s: 0.1), "batch_size"),
    ("sparsejax.pruning.mask_iou", "masks of other trees", lambda: pruning.mask_iou(MASK, WRONG_TREE), "mask"),
    ("sparsejax.pruning.mask_iou", "leaf shapes differ", lambda: pruning.mask_iou(
        MASK, {"dense": {"kernel": jnp.ones((4, 8), bool), "bias": None}}), "mask"),
    ("sparsejax.pruning.per_phase_rate", "target > 1", lambda: pruning.per_phase_rate(1.5, 2), "target_sparsity"),
    ("sparsejax.pruning.per_phase_rate", "phases 0", lambda: pruning.per_phase_rate(0.5, 0), "phases"),
    ("sparsejax.pruning.phase_sparsity", "phase > phases", lambda: pruning.phase_sparsity(0.5, 2, 3), "phase"),
    ("sparsejax.pruning.phase_sparsity", "phase < 0", lambda: pruning.phase_sparsity(0.5, 2, -1), "phase"),
    ("sparsejax.pruning.prune_magnitude", "sparsity > 1", lambda: pruning.prune_magnitude(PARAMS, MASK, 1.5),
     "sparsity"),
    ("sparsejax.pruning.prune_magnitude", "bad scope", lambda: pruning.prune_magnitude(PARAMS, MASK, 0.5,
                                                                                     scope="bogus"), "scope"),
    ("sparsejax.pruning.retrain_schedule", "unknown kind", lambda: pruning.retrain_schedule("bogus", 10, max_lr=0.1),
     "kind"),
    ("sparsejax.pruning.retrain_schedule", "max_lr < 0", lambda: pruning.retrain_schedule("FT", 10, max_lr=-1.0),
     "max_lr"),
    ("sparsejax.pruning.average", "empty list", lambda: pruning.average([]), "params_list"),
    ("sparsejax.pruning.average", "weights wrong length", lambda: pruning.average([PARAMS, PARAMS], weights=[1.0]),
     "weights"),
    ("sparsejax.pruning.greedy_soup", "scores wrong length", lambda: pruning.greedy_soup(
        [PARAMS, PARAMS], lambda p: 0.0, scores=[1.0]), "scores"),
    ("sparsejax.pruning.greedy_soup", "empty list", lambda: pruning.greedy_soup([], lambda p: 0.0), "params_list"),
    ("sparsejax.pruning.sparse_model_soup", "target > 1", lambda: pruning.sparse_model_soup(
        PARAMS, lambda p, m, i: [p], target_sparsity=1.5, phases=1), "target_sparsity"),
    ("sparsejax.pruning.sparse_model_soup", "unknown method", lambda: pruning.sparse_model_soup(
        PARAMS, lambda p, m, i: [p], target_sparsity=0.5, phases=1, method="bogus"), "method"),
    ("sparsejax.pruning.stack_trees", "empty list", lambda: pruning.stack_trees([]), "tree"),
    ("sparsejax.pruning.stack_trees", "different structures", lambda: pruning.stack_trees([PARAMS, WRONG_TREE]),
     "trees|structure"),
    ("sparsejax.pruning.unstack_tree", "n differs from axis", lambda: pruning.unstack_tree(
        pruning.stack_trees([PARAMS, PARAMS]), n=5), r"\bn\b"),
    ("sparsejax.pruning.unstack_tree", "scalar leaf", lambda: pruning.unstack_tree({"a": jnp.float32(1.0)}), "tree"),
    ("sparsejax.pruning.train_ingredients", "y shorter than x", lambda: pruning.train_ingredients(
        train_setup()[0], pruning.stack_trees([train_setup()[1]] * 2), X, Y[:4], steps=1, batch_size=2, key=KEY),
     r"\by\b|length", True),
    ("sparsejax.pruning.train_ingredients", "steps < 0", lambda: pruning.train_ingredients(
        train_setup()[0], pruning.stack_trees([train_setup()[1]] * 2), X, Y, steps=-1, batch_size=2, key=KEY),
     "steps", True),
    ("sparsejax.pruning.iss_p", "sparsity > 1", lambda: pruning.iss_p(SGD, 1.5), "sparsity"),
    ("sparsejax.pruning.iss_p", "alpha > 1", lambda: pruning.iss_p(SGD, 0.5, alpha=1.5), "alpha"),
    ("sparsejax.pruning.frozen_mask", "not a state", lambda: pruning.frozen_mask("x"), "state"),
    ("sparsejax.pruning.gradient_stats", "NaN grads", lambda: pruning.gradient_stats(PARAMS_NAN), "grads"),
    ("sparsejax.pruning.gradient_stats", "not a tree of arrays", lambda: pruning.gradient_stats({"a": "x"}), "grads"),
    ("sparsejax.pruning.one_shot_sweep", "sparsity > 1", lambda: pruning.one_shot_sweep(PARAMS, [1.5], lambda p: 0.0),
     "sparsit"),
    ("sparsejax.pruning.one_shot_sweep", "evaluate not callable", lambda: pruning.one_shot_sweep(
        PARAMS, [0.5], "acc"), "evaluate"),
    ("sparsejax.pruning.essential_sparsity", "lengths differ", lambda: pruning.essential_sparsity(
        [0.1, 0.2], [1.0]), "metric|sparsities|length"),
    ("sparsejax.pruning.essential_sparsity", "tolerance < 0", lambda: pruning.essential_sparsity(
        [0.1, 0.2], [1.0, 0.9], tolerance=-1.0), "tolerance"),
    ("sparsejax.pruning.knee", "lengths differ", lambda: pruning.knee([0.1, 0.2], [1.0, 2.0, 3.0]),
     "metric|sparsities|length"),
    ("sparsejax.pruning.knee", "NaN metric", lambda: pruning.knee([0.1, 0.2, 0.3], [1.0, NAN, 0.5]), "metric"),
    ("sparsejax.pruning.near_zero_fraction", "rel < 0", lambda: pruning.near_zero_fraction(PARAMS, rel=-1.0), "rel"),
    ("sparsejax.pruning.near_zero_fraction", "NaN params", lambda: pruning.near_zero_fraction(PARAMS_NAN), "params"),
    ("sparsejax.pruning.DAE", "n_features 0", lambda: pruning.DAE(n_features=0, hidden=4).init(
        {"params": KEY, "dropout": KEY}, X), "n_features", True),
    ("sparsejax.pruning.DAE", "bad output", lambda: pruning.DAE(n_features=6, hidden=4, output="bogus").init(
        {"params": KEY, "dropout": KEY}, X), "output", True),
    ("sparsejax.pruning.evolve", "mask wrong shape", lambda: pruning.evolve(KEY, W, jnp.ones((4, 8), bool), 0.2),
     "mask"),
    ("sparsejax.pruning.evolve", "zeta > 1", lambda: pruning.evolve(KEY, W, MASK["dense"]["kernel"], 1.5), "zeta"),
    ("sparsejax.pruning.neuron_strength", "1-d kernel", lambda: pruning.neuron_strength(jnp.ones(8)), "kernel"),
    ("sparsejax.pruning.neuron_strength", "NaN kernel", lambda: pruning.neuron_strength(W_NAN), "kernel"),
    ("sparsejax.pruning.select_features", "k > features", lambda: pruning.select_features(np.ones(4), 5), r"\bk\b"),
    ("sparsejax.pruning.select_features", "k < 0", lambda: pruning.select_features(np.ones(4), -1), r"\bk\b"),
    ("sparsejax.pruning.train_quickselection", "epochs < 0", lambda: pruning.train_quickselection(
        KEY, np.ones((8, 6), np.float32), epochs=-1, hidden=4), "epochs"),
    ("sparsejax.pruning.train_quickselection", "NaN x", lambda: pruning.train_quickselection(
        KEY, np.full((8, 6), np.nan, np.float32), epochs=1, hidden=4, batch_size=4), r"\bx\b"),
    # ---- sparsejax.quant
    ("sparsejax.quant.pack_codes", "codes > 2^bits", lambda: quant.pack_codes(jnp.full((8, 4), 20), 4), "codes"),
    ("sparsejax.quant.pack_codes", "bits 0", lambda: quant.pack_codes(jnp.zeros((8, 4), jnp.int32), 0), "bits"),
    ("sparsejax.quant.unpack_codes", "float packed", lambda: quant.unpack_codes(jnp.ones((4, 4)), 4), "packed"),
    ("sparsejax.quant.unpack_codes", "bits 3", lambda: quant.unpack_codes(jnp.ones((4, 4), jnp.uint8), 3), "bits"),
    ("sparsejax.quant.minmax_params", "NaN weight", lambda: quant.minmax_params(W_NAN, 4, 4), r"\bw\b"),
    ("sparsejax.quant.minmax_params", "g not dividing", lambda: quant.minmax_params(W, 4, 3), r"\bg\b"),
    ("sparsejax.quant.quantize", "g not dividing", lambda: quant.quantize(W, *scale_zero(), 4, 3), r"\bg\b"),
    ("sparsejax.quant.quantize", "NaN scale", lambda: quant.quantize(W, scale_zero()[0] * NAN, scale_zero()[1], 4, 4),
     "scale"),
    ("sparsejax.quant.dequantize", "scale wrong shape", lambda: quant.dequantize(
        jnp.zeros((8, 4), jnp.int32), jnp.ones((3, 4)), jnp.zeros((3, 4)), 4), "scale"),
    ("sparsejax.quant.dequantize", "g 0", lambda: quant.dequantize(jnp.zeros((8, 4), jnp.int32), *scale_zero(), 0),
     r"\bg\b"),
    ("sparsejax.quant.fake_quantize", "bits 0", lambda: quant.fake_quantize(W, *scale_zero(), 0, 4), "bits"),
    ("sparsejax.quant.fake_quantize", "zero wrong shape", lambda: quant.fake_quantize(
        W, scale_zero()[0], jnp.zeros((5, 4)), 4, 4), "zero"),
    ("sparsejax.quant.round_ste", "string input", lambda: quant.round_ste("abc"), r"\bx\b"),
    ("sparsejax.quant.group_quantize", "int scale dtype", lambda: quant.group_quantize(W, 4, 4, scale_dtype=jnp.int8),
     "scale_dtype"),
    ("sparsejax.quant.group_quantize", "bits 9", lambda: quant.group_quantize(W, 9, 4), "bits"),
    ("sparsejax.quant.group_quantize", "scale without zero", lambda: quant.group_quantize(
        W, 4, 4, scale=scale_zero()[0]), "zero|scale"),
    ("sparsejax.quant.group_dequantize", "packed wrong shape", lambda: quant.group_dequantize(
        group_quant()._replace(packed=group_quant().packed[:1])), "packed"),
    ("sparsejax.quant.group_dequantize", "bits changed", lambda: quant.group_dequantize(
        group_quant()._replace(bits=3)), "bits"),
    ("sparsejax.quant.group_quant_nbytes", "not a GroupQuantized", lambda: quant.group_quant_nbytes("x"), r"\bc\b"),
    ("sparsejax.quant.group_salience", "feat_sq wrong shape", lambda: quant.group_salience(W, jnp.ones(3), 4),
     "feat_sq"),
    ("sparsejax.quant.group_salience", "g not dividing", lambda: quant.group_salience(W, None, 3), r"\bg\b"),
    ("sparsejax.quant.gqsa_masks", "g not dividing", lambda: quant.gqsa_masks(PARAMS, 3, 0.5), r"\bg\b"),
    ("sparsejax.quant.gqsa_masks", "sparsity > 1", lambda: quant.gqsa_masks(PARAMS, 4, 1.5), "sparsity"),
    ("sparsejax.quant.gqsa_init", "masks of another tree", lambda: quant.gqsa_init(PARAMS, WRONG_TREE, 4, 4),
     "masks"),
    ("sparsejax.quant.gqsa_init", "bits 0", lambda: quant.gqsa_init(PARAMS, gqsa()[0], 0, 4), "bits"),
    ("sparsejax.quant.gqsa_weights", "g not dividing", lambda: quant.gqsa_weights(gqsa()[1], gqsa()[0], 4, 3),
     r"\bg\b"),
    ("sparsejax.quant.gqsa_weights", "masks of another tree", lambda: quant.gqsa_weights(
        gqsa()[1], WRONG_TREE, 4, 4), "masks"),
    ("sparsejax.quant.merge", "weights of another tree", lambda: quant.merge(PARAMS, {"nope": {"kernel": W}}),
     "weights"),
    ("sparsejax.quant.bqpo", "steps < 0", lambda: quant.bqpo(
        lambda p, x: x @ p["dense"]["kernel"], PARAMS, gqsa()[1], gqsa()[0], jnp.ones((4, 8)), jnp.ones((4, 4)),
        bits=4, g=4, steps=-1), "steps"),
    ("sparsejax.quant.bqpo", "targets wrong length", lambda: quant.bqpo(
        lambda p, x: x @ p["dense"]["kernel"], PARAMS, gqsa()[1], gqsa()[0], jnp.ones((4, 8)), jnp.ones((3, 4)),
        bits=4, g=4, steps=1, batch_size=2), "targets|inputs|length"),
    ("sparsejax.quant.freeze_codes", "bits 0", lambda: quant.freeze_codes(gqsa()[1], gqsa()[0], 0, 4), "bits"),
    ("sparsejax.quant.freeze_codes", "masks of another tree", lambda: quant.freeze_codes(
        gqsa()[1], WRONG_TREE, 4, 4), "masks"),
    ("sparsejax.quant.frozen_weights", "g not dividing", lambda: quant.frozen_weights(
        quant.freeze_codes(gqsa()[1], gqsa()[0], 4, 4), gqsa()[0], 4, 3), r"\bg\b"),
    ("sparsejax.quant.split_frozen", "not a frozen tree", lambda: quant.split_frozen("x"), "frozen"),
    ("sparsejax.quant.join_frozen", "structures differ", lambda: quant.join_frozen(
        {"a": jnp.ones(2)}, {"b": jnp.ones(2)}), "codes|qparams"),
    ("sparsejax.quant.make_e2e_oqp_step", "bits 0", lambda: quant.make_e2e_oqp_step(
        lambda p: 0.0, gqsa()[0], 0, 4, SGD), "bits"),
    ("sparsejax.quant.make_e2e_oqp_step", "tx not a transform", lambda: quant.make_e2e_oqp_step(
        lambda p: 0.0, gqsa()[0], 4, 4, "adam"), r"\btx\b"),
    ("sparsejax.quant.gqsa_pack", "codes out of range", lambda: quant.gqsa_pack(
        jnp.full((8, 4), 20, jnp.int32), *gqsa_weight()[1][1:], 4, 4), "codes"),
    ("sparsejax.quant.gqsa_pack", "mask wrong shape", lambda: quant.gqsa_pack(
        *gqsa_weight()[1][:3], jnp.ones((4, 8), bool), 4, 4), "mask"),
    ("sparsejax.quant.gqsa_unpack", "group_idx out of range", lambda: quant.gqsa_unpack(
        gqsa_weight()[0]._replace(group_idx=gqsa_weight()[0].group_idx + 9)), "group_idx"),
    ("sparsejax.quant.gqsa_nbytes", "not a GQSAWeight", lambda: quant.gqsa_nbytes("x"), r"\bc\b"),
    ("sparsejax.quant.gqsa_matmul", "x inner dim", lambda: quant.gqsa_matmul(jnp.ones((4, 12)), gqsa_weight()[0]),
     r"\bx\b"),
    ("sparsejax.quant.gqsa_matmul", "c not a GQSAWeight", lambda: quant.gqsa_matmul(jnp.ones(8), W), r"\bc\b"),
    ("sparsejax.quant.gqsa_to_quantized", "not a GQSAWeight", lambda: quant.gqsa_to_quantized(3), r"\bc\b"),
    # ---- sparsejax.structured
    ("sparsejax.structured.nm_mask", "n > m", lambda: structured.nm_mask(W, 3, 2), r"\bn\b"),
    ("sparsejax.structured.nm_mask", "axis out of range", lambda: structured.nm_mask(W, 2, 4, axis=5), "axis"),
    ("sparsejax.structured.nm_keep", "m not dividing", lambda: structured.nm_keep(W, 1, 3, axis=0), r"\bm\b"),
    ("sparsejax.structured.nm_keep", "n < 0", lambda: structured.nm_keep(W, -1, 4, axis=0), r"\bn\b"),
    ("sparsejax.structured.is_nm_sparse", "m not dividing", lambda: structured.is_nm_sparse(W, 1, 3), r"\bm\b"),
    ("sparsejax.structured.is_nm_sparse", "n < 0", lambda: structured.is_nm_sparse(W, -1, 4), r"\bn\b"),
    ("sparsejax.structured.sr_ste", "n > m", lambda: structured.sr_ste(3, 2), r"\bn\b"),
    ("sparsejax.structured.sr_ste", "lambda_w < 0", lambda: structured.sr_ste(2, 4, lambda_w=-1.0), "lambda_w"),
    ("sparsejax.structured.ste_sparse", "mask of another tree", lambda: structured.ste_sparse(PARAMS, WRONG_TREE),
     "mask"),
    ("sparsejax.structured.ste_sparse", "string beta", lambda: structured.ste_sparse(PARAMS, MASK, beta="x"), "beta"),
    ("sparsejax.structured.linear_mask_decay", "rate < 0", lambda: structured.linear_mask_decay(-1.0), "rate"),
    ("sparsejax.structured.linear_mask_decay", "begin < 0", lambda: structured.linear_mask_decay(0.1, begin_step=-1),
     "begin_step"),
    ("sparsejax.structured.exponential_mask_decay", "rate < 0", lambda: structured.exponential_mask_decay(-1.0),
     "rate"),
    ("sparsejax.structured.exponential_mask_decay", "NaN rate", lambda: structured.exponential_mask_decay(NAN),
     "rate"),
    ("sparsejax.structured.stepwise_structure_decay", "end < begin", lambda: structured.stepwise_structure_decay(
        2, 4, 10, 5), "end_step"),
    ("sparsejax.structured.stepwise_structure_decay", "n > m", lambda: structured.stepwise_structure_decay(
        5, 4, 0, 10), r"\bn\b"),
    ("sparsejax.structured.geometric_structure_levels", "n > m", lambda: structured.geometric_structure_levels(5, 4),
     r"\bn\b"),
    ("sparsejax.structured.geometric_structure_levels", "max_m < m", lambda: structured.geometric_structure_levels(
        2, 4, max_m=2), "max_m"),
    ("sparsejax.structured.frame_index", "frames 0", lambda: structured.frame_index(0, 10, 0), "frames"),
    ("sparsejax.structured.frame_index", "end < begin", lambda: structured.frame_index(10, 5, 2), "end_step"),
    ("sparsejax.structured.level_mask", "idx out of range", lambda: structured.level_mask(
        PARAMS, ((2, 4), (1, 4)), 5), "idx"),
    ("sparsejax.structured.level_mask", "level n > m", lambda: structured.level_mask(PARAMS, ((5, 4),), 0),
     r"\bn\b|levels"),
    ("sparsejax.structured.structure_decay_levels", "n > m", lambda: structured.structure_decay_levels(5, 4),
     r"\bn\b"),
    ("sparsejax.structured.structure_decay_levels", "float m", lambda: structured.structure_decay_levels(2, 4.5),
     r"\bm\b"),
    ("sparsejax.structured.nm_recipe", "unknown method", lambda: structured.nm_recipe("bogus", 2, 4, total_steps=10),
     "method"),
    ("sparsejax.structured.nm_recipe", "total_steps 0", lambda: structured.nm_recipe("srste", 2, 4, total_steps=0),
     "total_steps"),
    ("sparsejax.structured.IsoFLOPLayer", "unknown family", lambda: structured.IsoFLOPLayer(
        features=4, in_features=6, family="bogus").init(KEY, X), "family", True),
    ("sparsejax.structured.IsoFLOPLayer", "features 0", lambda: structured.IsoFLOPLayer(
        features=0, in_features=6).init(KEY, X), "features", True),
    ("sparsejax.structured.isoflop_plan", "unknown family", lambda: structured.isoflop_plan("bogus", 4, 4, 0.5),
     "family"),
    ("sparsejax.structured.isoflop_plan", "sparsity > 1", lambda: structured.isoflop_plan("wide", 4, 4, 1.5),
     "sparsity"),
    ("sparsejax.structured.SparseIFTMLP", "sparsity > 1", lambda: structured.SparseIFTMLP(
        num_classes=3, family="wide", sparsity=1.5).init(KEY, X), "sparsity", True),
    ("sparsejax.structured.SparseIFTMLP", "num_classes 0", lambda: structured.SparseIFTMLP(
        num_classes=0, hidden=(4,)).init(KEY, X), "num_classes", True),
    ("sparsejax.structured.SparseIFTCNN", "unknown family", lambda: structured.SparseIFTCNN(
        num_classes=3, family="bogus").init(KEY, jnp.ones((1, 8, 8, 1))), "family", True),
    ("sparsejax.structured.SparseIFTCNN", "rank-2 input", lambda: structured.SparseIFTCNN(
        num_classes=3).init(KEY, jnp.ones((1, 8))), r"\bx\b", True),
    ("sparsejax.structured.count_flops", "mask of another tree", lambda: structured.count_flops(
        ift()[0], ift()[1], {"nope": jnp.ones(3)}, X), "mask", True),
    ("sparsejax.structured.count_flops", "variables without params", lambda: structured.count_flops(
        structured.SparseIFTMLP(num_classes=3), {}, None, X), "variables"),
    ("sparsejax.structured.sparse_ift_mask", "variables without params", lambda: structured.sparse_ift_mask(KEY, {}),
     "variables|params"),
    ("sparsejax.structured.sparse_ift_mask", "key not a key", lambda: structured.sparse_ift_mask("k", ift()[1]),
     "key", True),
    ("sparsejax.structured.wide_factor", "sparsity 1", lambda: structured.wide_factor(1.0), "sparsity"),
    ("sparsejax.structured.wide_factor", "sparsity < 0", lambda: structured.wide_factor(-0.5), "sparsity"),
    ("sparsejax.structured.group_norms", "g not dividing", lambda: structured.group_norms(W, 3), r"\bg\b"),
    ("sparsejax.structured.group_norms", "axis out of range", lambda: structured.group_norms(W, 4, axis=5), "axis"),
    ("sparsejax.structured.group_mask", "sparsity > 1", lambda: structured.group_mask(W, 4, 1.5), "sparsity"),
    ("sparsejax.structured.group_mask", "scores wrong shape", lambda: structured.group_mask(
        W, 4, 0.5, scores=jnp.ones((3, 3))), "scores"),
    ("sparsejax.structured.group_masks", "g not dividing", lambda: structured.group_masks(PARAMS, 3, 0.5),
     r"dense/kernel"),
    ("sparsejax.structured.group_masks", "sparsity > 1", lambda: structured.group_masks(PARAMS, 4, 1.5), "sparsity"),
    ("sparsejax.structured.is_group_sparse", "g 0", lambda: structured.is_group_sparse(W, 0), r"\bg\b"),
    ("sparsejax.structured.is_group_sparse", "1-d w", lambda: structured.is_group_sparse(jnp.ones(8), 4), r"\bw\b"),
    ("sparsejax.structured.group_compress", "g not dividing", lambda: structured.group_compress(W, 3), r"\bg\b"),
    ("sparsejax.structured.group_compress", "mask wrong shape", lambda: structured.group_compress(
        W, 4, jnp.ones((4, 8), bool)), "mask"),
    ("sparsejax.structured.group_decompress", "group_idx out of range", lambda: structured.group_decompress(
        group_c()._replace(group_idx=group_c().group_idx + 5)), "group_idx"),
    ("sparsejax.structured.group_nbytes", "not a GroupCompressed", lambda: structured.group_nbytes("x"), r"\bc\b"),
    ("sparsejax.structured.nm_compress", "n > m", lambda: structured.nm_compress(W, 3, 2), r"\bn\b"),
    ("sparsejax.structured.nm_compress", "1-d x", lambda: structured.nm_compress(jnp.ones(7), 2, 4),
     r"\bx\b|not divisible|axis"),
    ("sparsejax.structured.nm_decompress", "index out of range", lambda: structured.nm_decompress(
        nm_c()._replace(indices=nm_c().indices + 4)), "indices"),
    ("sparsejax.structured.nm_nbytes", "index_bits 0", lambda: structured.nm_nbytes(nm_c(), index_bits=0),
     "index_bits"),
    ("sparsejax.structured.nm_nbytes", "not an NMCompressed", lambda: structured.nm_nbytes("x"), r"\bc\b"),
    ("sparsejax.structured.block_mask", "block not dividing", lambda: structured.block_mask(W, (3, 3), 0.5),
     "block_shape"),
    ("sparsejax.structured.block_mask", "sparsity > 1", lambda: structured.block_mask(W, (2, 2), 1.5), "sparsity"),
    ("sparsejax.structured.block_mask", "score wrong shape", lambda: structured.block_mask(
        W, (2, 2), 0.5, score=jnp.ones((3, 3))), "score"),
    ("sparsejax.structured.block_norms", "zero block", lambda: structured.block_norms(W, (0, 2)), "block_shape"),
    ("sparsejax.structured.block_norms", "NaN weight", lambda: structured.block_norms(W_NAN, (2, 2)), r"\bw\b"),
    ("sparsejax.structured.is_block_sparse", "block not dividing", lambda: structured.is_block_sparse(
        MASK["dense"]["kernel"], (3, 3)), "block_shape"),
    # ---- sparsejax.train
    ("sparsejax.train.make_train_step", "apply_fn not callable", lambda: train.make_train_step("apply", SGD),
     "apply_fn"),
    ("sparsejax.train.make_train_step", "labels >= classes", lambda: train_setup()[0](
        train_setup()[1], X, jnp.full((8,), 7)), "labels", True,
     "labels in [0, num_classes) inside the jitted step (fit reports the NaN loss as DivergenceError)"),
    ("sparsejax.train.make_train_step", "tx not a transform", lambda: train.make_train_step(_apply, "sgd"), r"\btx\b"),
    ("sparsejax.train.make_eval_step", "loss_fn not callable", lambda: train.make_eval_step(_apply, loss_fn=3),
     "loss_fn"),
    ("sparsejax.train.make_eval_step", "labels wrong length", lambda: train.make_eval_step(lambda p, x: _apply(x))(
        None, X, Y[:3]), "labels", True),
    ("sparsejax.train.evaluate", "y shorter than x", lambda: train.evaluate(
        train.make_eval_step(lambda p, x: _apply(x)), None, np.asarray(X), np.asarray(Y[:4])), r"\by\b|length"),
    ("sparsejax.train.evaluate", "batch_size 0", lambda: train.evaluate(
        train.make_eval_step(lambda p, x: _apply(x)), None, np.asarray(X), np.asarray(Y), batch_size=0),
     "batch_size"),
    ("sparsejax.train.evaluate", "empty set", lambda: train.evaluate(
        train.make_eval_step(lambda p, x: _apply(x)), None, np.zeros((0, 6)), np.zeros((0,), int)), r"\bx\b|empty"),
    ("sparsejax.train.cross_entropy_loss", "labels >= classes", lambda: train.cross_entropy_loss(
        jnp.zeros((4, 10)), jnp.array([0, 1, 2, 10])), "labels"),
    ("sparsejax.train.cross_entropy_loss", "float labels", lambda: train.cross_entropy_loss(
        jnp.zeros((4, 10)), jnp.ones(4)), "labels"),
    ("sparsejax.train.cross_entropy_loss", "labels wrong length", lambda: train.cross_entropy_loss(
        jnp.zeros((4, 10)), jnp.zeros(3, jnp.int32)), "labels"),
    ("sparsejax.train.accuracy", "labels broadcast", lambda: train.accuracy(jnp.zeros((4, 10)), jnp.zeros(1, int)),
     "labels"),
    ("sparsejax.train.accuracy", "2-d labels", lambda: train.accuracy(jnp.zeros((4, 10)), jnp.zeros((4, 1), int)),
     "labels"),
    ("sparsejax.train.data_mesh", "axis not a string", lambda: train.data_mesh(3), "axis"),
    ("sparsejax.train.data_mesh", "empty axis", lambda: train.data_mesh(""), "axis"),
    ("sparsejax.train.shard_batch", "scalar leaf", lambda: train.shard_batch(jnp.float32(1.0), train.data_mesh()),
     "tree|leading"),
    ("sparsejax.train.shard_batch", "batch not divisible", lambda: train.shard_batch(
        jnp.ones((3, 2)), train.data_mesh()), "tree|divisible|batch"),
    ("sparsejax.train.replicate_on_mesh", "mesh not a Mesh", lambda: train.replicate_on_mesh(PARAMS, "mesh"),
     "mesh"),
    ("sparsejax.train.LoopCheckpointer", "every 0", lambda: train.LoopCheckpointer("/tmp/probe_ckpt", 0), "every"),
    ("sparsejax.train.LoopCheckpointer", "float every", lambda: train.LoopCheckpointer("/tmp/probe_ckpt", 1.5),
     "every"),
    ("sparsejax.train.LoopCheckpointer", "max_to_keep 0", lambda: train.LoopCheckpointer(
        "/tmp/probe_ckpt", 1, max_to_keep=0), "max_to_keep"),
    ("sparsejax.train.fit", "y shorter than x", lambda: train.fit(
        train_setup()[0], train_setup()[1], X, Y[:4], steps=1, batch_size=2, key=KEY), r"\by\b|length", True),
    ("sparsejax.train.fit", "batch_size 0", lambda: train.fit(
        train_setup()[0], train_setup()[1], X, Y, steps=1, batch_size=0, key=KEY), "batch_size", True),
    ("sparsejax.train.fit", "NaN x", lambda: train.fit(
        train_setup()[0], train_setup()[1], X.at[0, 0].set(NAN), Y, steps=1, batch_size=2, key=KEY), r"\bx\b", True),
    ("sparsejax.train.fit", "steps < 0", lambda: train.fit(
        train_setup()[0], train_setup()[1], X, Y, steps=-1, batch_size=2, key=KEY), "steps", True),
]


def _replace(obj, **kw):
    """A copy of a dataclass / NamedTuple compressed format with some fields replaced."""
    if hasattr(obj, "_replace"):
        return obj._replace(**kw)
    import dataclasses
    return dataclasses.replace(obj, **kw)
