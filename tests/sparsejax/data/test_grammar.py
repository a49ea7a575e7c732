import numpy as np
import pytest

from sparsejax.data import VOCAB, grammar_corpus, lm_windows
from sparsejax.data.grammar import BOS, EOS, GRAMMAR, PAD

SG_NOUNS = {w for _, (w,) in GRAMMAR["N_sg"]}
PL_NOUNS = {w for _, (w,) in GRAMMAR["N_pl"]}
SG_VERBS = {w for k in ("V_sg", "Vi_sg", "Vs_sg") for _, (w,) in GRAMMAR[k]}
PL_VERBS = {w for k in ("V_pl", "Vi_pl", "Vs_pl") for _, (w,) in GRAMMAR[k]}


def test_rules_are_normalised():
    for lhs, rules in GRAMMAR.items():
        assert abs(sum(p for p, _ in rules) - 1.0) < 1e-9, lhs


def test_layout_and_determinism():
    c = grammar_corpus(200, seed=3, max_len=20)
    assert c.tokens.shape == (200, 20) and c.tokens.dtype == np.int32
    assert c.vocab == VOCAB
    for row, n in zip(c.tokens, c.lengths):
        assert row[0] == BOS and row[n - 1] == EOS and np.all(row[n:] == PAD)
        assert np.all((row[1 : n - 1] > EOS) & (row[1 : n - 1] < len(VOCAB)))
    np.testing.assert_array_equal(grammar_corpus(200, seed=3, max_len=20).tokens, c.tokens)
    assert not np.array_equal(grammar_corpus(200, seed=4, max_len=20).tokens, c.tokens)


def test_subject_verb_agreement():
    # the subject NP holds no verb, so the first noun is its head and the first verb is the main verb
    c = grammar_corpus(300, seed=0)
    for row, n in zip(c.tokens, c.lengths):
        words = [VOCAB[t] for t in row[1 : n - 1]]
        noun = next(w for w in words if w in SG_NOUNS | PL_NOUNS)
        verb = next(w for w in words if w in SG_VERBS | PL_VERBS)
        assert (noun in SG_NOUNS) == (verb in SG_VERBS), words


def test_lm_windows_is_the_unpadded_stream():
    c = grammar_corpus(50, seed=1)
    w = lm_windows(c, 15)
    stream = np.concatenate([r[:n] for r, n in zip(c.tokens, c.lengths)])
    assert w.shape[1] == 16
    np.testing.assert_array_equal(w.reshape(-1), stream[: w.size])
    assert PAD not in w


def test_errors():
    with pytest.raises(ValueError, match="n_sentences"):
        grammar_corpus(0)
    with pytest.raises(ValueError, match="max_len"):
        grammar_corpus(3, max_len=4)
    with pytest.raises(ValueError, match="window"):
        lm_windows(grammar_corpus(1, seed=0), 1000)


def test_shifted_grammar_b_keeps_a_ids_and_adds_new_words():
    from sparsejax.data import VOCAB_SHIFTED
    from sparsejax.data.grammar import GRAMMAR_B, NEW_WORDS

    for lhs, rules in GRAMMAR_B.items():
        assert abs(sum(p for p, _ in rules) - 1.0) < 1e-9, lhs
    assert VOCAB_SHIFTED[: len(VOCAB)] == VOCAB and set(NEW_WORDS).isdisjoint(VOCAB) and len(NEW_WORDS) == 14
    a = grammar_corpus(400, seed=1, grammar="A")
    b = grammar_corpus(400, seed=1, grammar="B")
    assert b.vocab == VOCAB_SHIFTED and a.vocab == VOCAB
    assert a.tokens.max() < len(VOCAB) and b.tokens.max() >= len(VOCAB)
    new_frac = np.isin(b.tokens, np.arange(len(VOCAB), len(VOCAB_SHIFTED))).sum() / (b.lengths - 2).sum()
    assert 0.1 < new_frac < 0.5
    # changed probabilities: B starts with a plural subject 70% of the time, A 50%
    first_plural = lambda c: np.mean([any(c.vocab[t] in PL_NOUNS | {"foxes", "pilots", "lizards"} for t in row[1:4])  # noqa: E731
                                      for row in c.tokens])
    assert first_plural(b) > first_plural(a) + 0.1
    with pytest.raises(ValueError, match="grammar"):
        grammar_corpus(3, grammar="C")
