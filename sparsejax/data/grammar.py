"""Text from a probabilistic context-free grammar (PCFG) written here, tokenised for language
modelling.

The grammar is a small English fragment with subject-verb number agreement (a dependency that
can span a prepositional phrase), adjectives, prepositional phrases and embedded clauses, so a
decoder LM has both local and longer-range structure to learn. Sampling is a pure function of the
seed (NumPy ``Generator``); sentences longer than ``max_len`` tokens are redrawn.

Token ids: ``0 = <pad>``, ``1 = <bos>``, ``2 = <eos>``, then the words in sorted order.

A shifted domain for fine-tuning and forgetting studies: grammar ``"B"`` (:data:`GRAMMAR_B`) keeps
the syntax of ``"A"`` (:data:`GRAMMAR`) but changes the production probabilities (more plural
subjects, prepositional phrases, adjectives and embedded clauses, other determiner and word
frequencies) and adds new nouns and verbs. Their ids follow grammar A's
(:data:`VOCAB_SHIFTED` = :data:`VOCAB` + the new words in sorted order), so a model with
``len(VOCAB_SHIFTED)`` outputs reads both corpora and A's ids never move.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sparsejax.core.validation import check_choice, check_index_range, check_int, check_type

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")

# nonterminal -> [(probability, right-hand side)]; symbols absent from the keys are words.
GRAMMAR: dict[str, list[tuple[float, tuple[str, ...]]]] = {
    "S": [(0.5, ("NP_sg", "VP_sg")), (0.5, ("NP_pl", "VP_pl"))],
    "NP_sg": [(0.55, ("Det_sg", "N_sg")), (0.3, ("Det_sg", "Adj", "N_sg")), (0.15, ("NP_sg", "PP"))],
    "NP_pl": [(0.55, ("Det_pl", "N_pl")), (0.3, ("Det_pl", "Adj", "N_pl")), (0.15, ("NP_pl", "PP"))],
    "NP": [(0.5, ("NP_sg",)), (0.5, ("NP_pl",))],
    "VP_sg": [(0.5, ("V_sg", "NP")), (0.25, ("Vi_sg",)), (0.15, ("Vi_sg", "PP")), (0.1, ("Vs_sg", "that", "S"))],
    "VP_pl": [(0.5, ("V_pl", "NP")), (0.25, ("Vi_pl",)), (0.15, ("Vi_pl", "PP")), (0.1, ("Vs_pl", "that", "S"))],
    "PP": [(1.0, ("P", "NP"))],
    "Det_sg": [(0.4, ("the",)), (0.3, ("a",)), (0.15, ("every",)), (0.15, ("this",))],
    "Det_pl": [(0.4, ("the",)), (0.25, ("some",)), (0.2, ("many",)), (0.15, ("these",))],
    "N_sg": [(1 / 6, (w,)) for w in ("dog", "cat", "robot", "teacher", "bird", "scientist")],
    "N_pl": [(1 / 6, (w,)) for w in ("dogs", "cats", "robots", "teachers", "birds", "scientists")],
    "Adj": [(0.2, (w,)) for w in ("small", "red", "clever", "old", "quiet")],
    "V_sg": [(0.25, (w,)) for w in ("sees", "likes", "chases", "finds")],
    "V_pl": [(0.25, (w,)) for w in ("see", "like", "chase", "find")],
    "Vi_sg": [(1 / 3, (w,)) for w in ("sleeps", "runs", "sings")],
    "Vi_pl": [(1 / 3, (w,)) for w in ("sleep", "run", "sing")],
    "Vs_sg": [(0.5, (w,)) for w in ("thinks", "says")],
    "Vs_pl": [(0.5, (w,)) for w in ("think", "say")],
    "P": [(0.25, (w,)) for w in ("near", "with", "under", "behind")],
}



def _uniform(words: tuple[str, ...]) -> list[tuple[float, tuple[str, ...]]]:
    return [(1 / len(words), (w,)) for w in words]


def _shifted() -> dict[str, list[tuple[float, tuple[str, ...]]]]:
    """Grammar B: grammar A with new production probabilities and new nouns/verbs."""
    g = dict(GRAMMAR)
    g.update({
        "S": [(0.3, ("NP_sg", "VP_sg")), (0.7, ("NP_pl", "VP_pl"))],
        "NP_sg": [(0.3, ("Det_sg", "N_sg")), (0.45, ("Det_sg", "Adj", "N_sg")), (0.25, ("NP_sg", "PP"))],
        "NP_pl": [(0.3, ("Det_pl", "N_pl")), (0.45, ("Det_pl", "Adj", "N_pl")), (0.25, ("NP_pl", "PP"))],
        "NP": [(0.3, ("NP_sg",)), (0.7, ("NP_pl",))],
        "VP_sg": [(0.3, ("V_sg", "NP")), (0.2, ("Vi_sg",)), (0.3, ("Vi_sg", "PP")), (0.2, ("Vs_sg", "that", "S"))],
        "VP_pl": [(0.3, ("V_pl", "NP")), (0.2, ("Vi_pl",)), (0.3, ("Vi_pl", "PP")), (0.2, ("Vs_pl", "that", "S"))],
        "Det_sg": [(0.1, ("the",)), (0.5, ("a",)), (0.1, ("every",)), (0.3, ("this",))],
        "Det_pl": [(0.1, ("the",)), (0.5, ("some",)), (0.1, ("many",)), (0.3, ("these",))],
        "N_sg": _uniform(("dog", "cat", "robot", "fox", "pilot", "lizard")),
        "N_pl": _uniform(("dogs", "cats", "robots", "foxes", "pilots", "lizards")),
        "Adj": [(0.1, ("small",)), (0.1, ("red",)), (0.4, ("clever",)), (0.1, ("old",)), (0.3, ("quiet",))],
        "V_sg": _uniform(("sees", "likes", "follows", "paints")),
        "V_pl": _uniform(("see", "like", "follow", "paint")),
        "Vi_sg": _uniform(("sleeps", "jumps", "waits")),
        "Vi_pl": _uniform(("sleep", "jump", "wait")),
        "P": [(0.1, ("near",)), (0.2, ("with",)), (0.2, ("under",)), (0.5, ("behind",))],
    })
    return g


GRAMMAR_B = _shifted()
GRAMMARS = {"A": GRAMMAR, "B": GRAMMAR_B}


def _words(grammar: dict) -> set[str]:
    return {s for rules in grammar.values() for _, rhs in rules for s in rhs if s not in grammar}


VOCAB: tuple[str, ...] = SPECIALS + tuple(sorted(_words(GRAMMAR)))
NEW_WORDS: tuple[str, ...] = tuple(sorted(_words(GRAMMAR_B) - set(VOCAB)))
VOCAB_SHIFTED: tuple[str, ...] = VOCAB + NEW_WORDS
_INDEX = {w: i for i, w in enumerate(VOCAB_SHIFTED)}


class GrammarCorpus(NamedTuple):
    """``tokens[i]`` is ``<bos> w_1 ... w_k <eos>`` padded with ``<pad>`` to ``max_len``;
    ``lengths[i] = k + 2`` (non-pad tokens); ``vocab[id]`` is the token string."""

    tokens: np.ndarray
    lengths: np.ndarray
    vocab: tuple[str, ...]


def sample_sentence(rng: np.random.Generator, max_depth: int = 8, grammar: dict | None = None) -> list[str]:
    """One sentence (list of words) drawn top-down from ``grammar`` (default ``GRAMMAR``); below
    ``max_depth`` only non-recursive productions are used, so every draw terminates."""
    grammar = GRAMMAR if grammar is None else grammar

    def expand(symbol: str, depth: int) -> list[str]:
        if symbol not in grammar:
            return [symbol]
        rules = grammar[symbol]
        if depth >= max_depth:
            rules = [(p, rhs) for p, rhs in rules if not any(s in ("S", symbol, "NP", "PP") for s in rhs)] or rules
        probs = np.array([p for p, _ in rules])
        rhs = rules[rng.choice(len(rules), p=probs / probs.sum())][1]
        return [w for s in rhs for w in expand(s, depth + 1)]

    return expand("S", 0)


def grammar_corpus(n_sentences: int, seed: int = 0, max_len: int = 24, grammar: str = "A") -> GrammarCorpus:
    """``n_sentences`` tokenised PCFG sentences of ``grammar`` (``"A"`` or the shifted ``"B"``),
    padded to ``max_len`` (sentences needing more than ``max_len`` tokens including
    ``<bos>``/``<eos>`` are redrawn). Deterministic in ``seed``. Grammar A's corpus carries
    ``vocab = VOCAB``, grammar B's ``VOCAB_SHIFTED`` (A's ids are the same in both)."""
    check_choice("grammar", grammar, sorted(GRAMMARS))
    n_sentences = check_int("n_sentences", n_sentences, minimum=1)
    check_int("seed", seed, minimum=0)
    max_len = check_int("max_len", max_len)
    if max_len < 5:
        raise ValueError(f"max_len must be >= 5 (the shortest sentence has 3 tokens + bos/eos), got {max_len}")
    rng = np.random.default_rng(seed)
    tokens = np.full((n_sentences, max_len), PAD, np.int32)
    lengths = np.zeros(n_sentences, np.int32)
    for i in range(n_sentences):
        while True:
            words = sample_sentence(rng, grammar=GRAMMARS[grammar])
            if len(words) + 2 <= max_len:
                break
        ids = [BOS] + [_INDEX[w] for w in words] + [EOS]
        tokens[i, : len(ids)] = ids
        lengths[i] = len(ids)
    return GrammarCorpus(tokens, lengths, VOCAB if grammar == "A" else VOCAB_SHIFTED)


def lm_windows(corpus: GrammarCorpus, seq_len: int) -> np.ndarray:
    """Concatenate the sentences (without padding) into one stream and cut it into
    non-overlapping windows of ``seq_len + 1`` tokens: inputs ``w[:, :-1]``, targets ``w[:, 1:]``."""
    check_type("corpus", corpus, GrammarCorpus)
    seq_len = check_int("seq_len", seq_len, minimum=1)
    stream = np.concatenate([row[:n] for row, n in zip(corpus.tokens, corpus.lengths)])
    n_windows = len(stream) // (seq_len + 1)
    if n_windows == 0:
        raise ValueError(f"corpus has {len(stream)} tokens, fewer than one window of {seq_len + 1}")
    return stream[: n_windows * (seq_len + 1)].reshape(n_windows, seq_len + 1)


def decode(tokens, vocab: tuple[str, ...] = VOCAB_SHIFTED) -> str:
    """Token ids -> space-separated words, dropping ``<pad>``. Ids outside the vocabulary raise
    (a negative id would otherwise wrap around to the end of the vocabulary)."""
    check_type("vocab", vocab, (tuple, list), "tuple of str")
    ids = np.asarray(tokens)
    check_index_range("tokens", ids.astype(np.int64) if ids.dtype.kind in "iu" else ids, len(vocab))
    return " ".join(vocab[int(t)] for t in np.asarray(tokens).reshape(-1) if int(t) != PAD)
