"""Datasets that need no download: scikit-learn's bundled digits, synthetic classification,
and a loader for the CIFAR-10 python-pickle format from a local directory."""
from sparsejax.data.batching import batch_indices, num_batches
from sparsejax.data.cifar import load_cifar10
from sparsejax.data.digits import Split, load_digits, synthetic_classification

__all__ = ["Split", "load_digits", "synthetic_classification", "load_cifar10", "batch_indices", "num_batches"]
from sparsejax.data.grammar import VOCAB, VOCAB_SHIFTED, GrammarCorpus, decode, grammar_corpus, lm_windows  # noqa: E402

__all__ += ["grammar_corpus", "lm_windows", "decode", "GrammarCorpus", "VOCAB", "VOCAB_SHIFTED"]
