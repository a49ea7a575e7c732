"""Fully dynamic monotone submodular maximisation under a cardinality constraint (P36: Banihashem, Biabani,
Goudarzi, Hajiaghayi, Jabbarzade, Monemizadeh, ICML 2023, "Dynamic Constrained Submodular Optimization with
Polylogarithmic Update Time").

Problem: elements of a universe are inserted and deleted; after every update keep ``S`` with ``|S| <= k`` and
``f(S) >= (1/2 - eps) OPT`` for the live set, with few oracle calls per update (the paper: ``(1/2 - eps)``
with amortised ``poly(log n, log k, 1/eps)`` queries against an oblivious adversary; Chen–Peng 2022: ``1/2 + eps``
needs ``poly(n)``). Objectives and the oracle counter: :mod:`.submodular_objectives`. All numpy (set
bookkeeping with data-dependent sizes; batched marginal gains are vectorised).

Shared frame (both dynamic algorithms): a geometric grid of OPT guesses ``gamma = lo (1 + eps)^i`` over
``[lo, k hi]``, ``lo``/``hi`` the smallest positive / largest singleton value over the whole universe (fixed
up front, as the official Lattanzi et al. code does; these ``n`` singleton gains are counted at construction),
one threshold run per guess with ``tau = gamma / (2k)``, and the answer of the best run.

:class:`DynamicSubmodular` -- **reconstruction** of the paper's algorithm. The paper body was not available
here; the rules below follow the research brief's reading of it and are ours where it is silent:

* level ``l`` keeps a pool ``R_l`` = every live element with ``Delta(e | G_{<l}) >= tau`` (``G_{<l}`` the
  picks of the lower levels) -- an exact invariant, checked by :meth:`DynamicSubmodular.check_invariants`;
* constructing level ``l``: pick a *uniformly random* element of the filtered pool, add it to ``G``, re-filter
  the pool against the new ``G``, repeat while the filtered pool is larger than ``|R_l| / 2`` (our choice:
  halving) and ``|G| < k``; the filtered remainder is ``R_{l+1}``. So there are ``<= log2 n + 1`` levels;
* insertion: the element joins the pools of the levels it passes (top-down, stopping at the first failure,
  which by submodularity excludes all deeper levels); if it passes all of them and ``|G| < k``, the last
  level is rebuilt so that it is considered (keeps the invariant below);
* deletion: removed from every pool; if it was a pick of level ``l``, rebuild from ``l``;
* both count *changes* per level; a level whose changes exceed ``eps |R_l|`` (its size when built) is rebuilt
  from there (our reading of "rebuild when the changes exceed eps ``|R_l|``").

After every update each run satisfies: ``|G| = k`` or every live element has ``Delta(e | G) < tau``. For the guess
``gamma <= OPT < (1 + eps) gamma`` this gives ``f(G) >= min(k tau, OPT - k tau) >= OPT / (2 (1 + eps))``, so the
best run is ``>= (1/2 - eps/2) OPT`` deterministically; randomness (uniform picks) only drives the cost
(a deletion hits a pick of level ``l`` with probability ``|G_l| / |R_l|`` against an oblivious adversary).
**Deviation:** one re-filter per pick costs ``|R_l|`` calls, so a rebuild from level ``l`` costs ``O(k |R_l|)``;
the amortised cost of this reconstruction is ``O(k log n / eps)`` per update and guess, polylogarithmic in
``n`` but not in ``k`` as the paper's bound is.

:class:`LattanziDynamic` -- port (our own Python, from reading the C++ in google-research/
fully_dynamic_submodular_maximization) of the "simple algorithm" of Lattanzi, Mitrovic, Norouzi-Fard, Tarnawski,
Zadimoghaddam (NeurIPS 2020) whose analysis the paper corrects: per guess, levels ``l = 0 .. T = ceil(log2 n)``
with buffers ``B_l``, pools ``A_l`` and solutions ``S_l``; an insertion that passes the singleton test joins every
buffer and rebuilds from the lowest ``l`` with ``|B_l| >= 2^{T-l}``; building level ``l`` adds elements of the
shuffled pool with gain ``>= tau`` while ``|A| >= 2^{T-l}`` (**deviation:** the C++ adds the first element with
gain ``> tau`` and loops forever when every gain equals ``tau``; with ``>=`` the pick is simply the first element
of the filtered pool, so no extra gains are evaluated for it); deleting an element of ``S`` rebuilds from the lowest
affected level only when the run's value falls below ``(1 - eps) gamma / 2``.

:class:`SieveStreamingDynamic` -- Sieve-Streaming (Badanidiyuru, Mirzasoleiman, Karbasi, Krause, KDD 2014), an
insertion-only ``(1/2 - eps)`` algorithm, used dynamically in the simplest honest way: per guess ``v`` a sieve
``S_v`` takes an arriving ``e`` when ``|S_v| < k`` and ``Delta(e | S_v) >= (v/2 - f(S_v)) / (k - |S_v|)`` (one
oracle call per open sieve and insertion); a deletion re-runs, from scratch, every sieve that contained the deleted
element on the surviving elements in their insertion order. A sieve that did not contain it would make exactly the
same choices on the surviving stream (a rejected element leaves the sieve unchanged), so the state after every
update equals Sieve-Streaming run from scratch on the surviving stream, and its guarantee holds after every update.
**Deviations:** the guess grid is the shared universe grid above (the paper's ``[m, 2km]`` grid for the running
maximum singleton ``m`` would change as elements are deleted); all guesses are kept open.

:class:`RecomputeGreedy` -- the static baseline: lazy greedy from scratch after every update.
"""
from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from sparsejax.core.validation import check_int, check_number

__all__ = ["DynamicSubmodular", "LattanziDynamic", "SieveStreamingDynamic", "RecomputeGreedy", "lazy_greedy",
           "opt_guesses",
           "brute_force_opt"]


def _check_objective(objective) -> None:
    for attr in ("empty", "gains", "add", "value", "n", "calls"):
        if not hasattr(objective, attr):
            raise TypeError(f"objective must provide {attr!r} (see sparsejax.algorithms.submodular_objectives), "
                            f"got {type(objective).__name__}")


def opt_guesses(singletons: np.ndarray, k: int, eps: float) -> np.ndarray:
    """Geometric grid ``lo (1 + eps)^i`` covering ``[lo, k hi]``; ``lo``/``hi`` the smallest positive / largest
    singleton value. Empty when no singleton is positive."""
    pos = np.asarray(singletons, float)
    pos = pos[pos > 1e-12]
    if pos.size == 0:
        return np.zeros(0)
    lo, hi = float(pos.min()), float(k * pos.max())
    count = int(math.floor(math.log(hi / lo) / math.log1p(eps) + 1e-9)) + 1
    grid = lo * (1.0 + eps) ** np.arange(count + 1)
    return grid[grid <= hi * (1.0 + eps)]


def lazy_greedy(objective, elems, k: int) -> tuple[list[int], float]:
    """Lazy (accelerated) greedy on ``elems``; returns the picks and their value (oracle calls counted)."""
    elems = list(elems)
    state, value, picks = objective.empty(), 0.0, []
    if not elems:
        return picks, value
    gains = objective.gains(state, elems)
    heap = [(-g, i, e) for i, (g, e) in enumerate(zip(gains, elems))]
    heapq.heapify(heap)
    stamp = {e: 0 for e in elems}
    while heap and len(picks) < k:
        neg, i, e = heapq.heappop(heap)
        if stamp[e] == len(picks):
            if -neg <= 0:
                break
            picks.append(e)
            value += -neg
            state = objective.add(state, e)
            continue
        g = float(objective.gains(state, [e])[0])
        stamp[e] = len(picks)
        heapq.heappush(heap, (-g, i, e))
    return picks, value


def brute_force_opt(objective, elems, k: int) -> float:
    """``max f(S)`` over all ``S`` of at most ``k`` of ``elems`` (tiny instances only; oracle calls counted)."""
    elems = list(elems)
    best = 0.0
    for r in range(1, min(k, len(elems)) + 1):
        for subset in itertools.combinations(elems, r):
            best = max(best, objective.value(list(subset)))
    return best


class _Dynamic:
    """Shared front: the guess grid, the live set, updates dispatched to every threshold run."""

    def __init__(self, objective, k: int, eps: float, seed: int):
        _check_objective(objective)
        self.objective = objective
        self.k = check_int("k", k, minimum=1)
        self.eps = check_number("eps", eps, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False)
        seed = check_int("seed", seed, minimum=0)
        self.singletons = objective.gains(objective.empty(), np.arange(objective.n))
        self.guesses = opt_guesses(self.singletons, self.k, self.eps)
        rngs = np.random.default_rng(seed).spawn(max(1, self.guesses.size))
        self.runs = [self._make_run(g, rng) for g, rng in zip(self.guesses, rngs)]
        self.live: set[int] = set()

    def _check_elem(self, e) -> int:
        return check_int("element", e, minimum=0, maximum=self.objective.n - 1)

    def insert(self, e: int) -> None:
        """Insert element ``e`` (must not be live)."""
        e = self._check_elem(e)
        if e in self.live:
            raise ValueError(f"element {e} is already live")
        self.live.add(e)
        for run in self.runs:
            run.insert(e)

    def delete(self, e: int) -> None:
        """Delete live element ``e``."""
        e = self._check_elem(e)
        if e not in self.live:
            raise ValueError(f"element {e} is not live")
        self.live.discard(e)
        for run in self.runs:
            run.delete(e)

    def solution(self) -> tuple[list[int], float]:
        """The best run's solution (at most ``k`` elements) and its value (from the runs' bookkeeping)."""
        best, value = [], 0.0
        for run in self.runs:
            if run.value > value:
                best, value = run.solution(), run.value
        return best, value


# ---------------------------------------------------------------- the paper's algorithm (reconstruction)

@dataclass
class _Level:
    pool: set
    state_before: np.ndarray
    value_before: float
    size0: int
    picks: list = field(default_factory=list)
    changes: int = 0


class _ThresholdRun:
    """One OPT guess of :class:`DynamicSubmodular`: levels with exact pools, uniform random picks."""

    def __init__(self, objective, k: int, tau: float, eps: float, rng):
        self.f, self.k, self.tau, self.eps, self.rng = objective, k, tau, eps, rng
        self.root: set[int] = set()
        self.levels: list[_Level] = []
        self.leftover: set[int] = set()
        self.state, self.value = objective.empty(), 0.0

    def solution(self) -> list[int]:
        return [e for lvl in self.levels for e in lvl.picks]

    def _n_picks(self, upto: int) -> int:
        return sum(len(lvl.picks) for lvl in self.levels[:upto])

    def _build(self, ell: int) -> None:
        """Rebuild levels ``ell, ell+1, ...`` from the pool of level ``ell`` (the root when ``ell = 0``)."""
        if ell < len(self.levels):
            pool, state, value = self.levels[ell].pool, self.levels[ell].state_before, self.levels[ell].value_before
        else:
            pool, state, value = self.root, self.f.empty(), 0.0
        if ell == 0:
            pool = self.root
        n_sel = self._n_picks(ell)
        del self.levels[ell:]
        cur = np.fromiter(pool, np.int64, len(pool))
        gains = self.f.gains(state, cur)
        cur, gains = cur[gains >= self.tau], gains[gains >= self.tau]
        while cur.size and n_sel < self.k:
            level = _Level(pool=set(cur.tolist()), state_before=state, value_before=value, size0=int(cur.size))
            self.levels.append(level)
            half = cur.size / 2.0
            while cur.size > half and n_sel < self.k:
                i = int(self.rng.integers(cur.size))
                e = int(cur[i])
                level.picks.append(e)
                value += float(gains[i])
                state = self.f.add(state, e)
                n_sel += 1
                gains = self.f.gains(state, cur)
                cur, gains = cur[gains >= self.tau], gains[gains >= self.tau]
        self.leftover = set(cur.tolist())
        self.state, self.value = state, value

    def _rebuild_if_needed(self, touched: list[int]) -> None:
        for ell in touched:
            lvl = self.levels[ell]
            if lvl.changes > self.eps * lvl.size0:
                self._build(ell)
                return

    def insert(self, e: int) -> None:
        if self.f.gains(self.f.empty(), [e])[0] < self.tau:
            return
        self.root.add(e)
        if not self.levels:
            self._build(0)
            return
        touched = []
        for ell, lvl in enumerate(self.levels):
            if ell > 0 and self.f.gains(lvl.state_before, [e])[0] < self.tau:
                break
            lvl.pool.add(e)
            lvl.changes += 1
            touched.append(ell)
        else:
            if self.f.gains(self.state, [e])[0] >= self.tau:
                if self._n_picks(len(self.levels)) < self.k:
                    self._build(len(self.levels) - 1)
                    return
                self.leftover.add(e)
        self._rebuild_if_needed(touched)

    def delete(self, e: int) -> None:
        if e not in self.root:
            return
        self.root.discard(e)
        self.leftover.discard(e)
        touched, hit = [], None
        for ell, lvl in enumerate(self.levels):
            if e not in lvl.pool:
                break
            lvl.pool.discard(e)
            lvl.changes += 1
            touched.append(ell)
            if hit is None and e in lvl.picks:
                hit = ell
        if hit is not None:
            self._build(hit)
        else:
            self._rebuild_if_needed(touched)


class DynamicSubmodular(_Dynamic):
    """The paper's fully dynamic ``(1/2 - eps)`` algorithm (reconstruction, see the module docstring).

    ``objective`` from :mod:`.submodular_objectives`, cardinality ``k``, ``eps`` in (0, 1), ``seed`` for the
    random picks. Use :meth:`insert`, :meth:`delete`, :meth:`solution`; oracle calls are ``objective.calls``.
    """

    def __init__(self, objective, k: int, eps: float = 0.2, seed: int = 0):
        super().__init__(objective, k, eps, seed)

    def _make_run(self, gamma, rng):
        return _ThresholdRun(self.objective, self.k, gamma / (2 * self.k), self.eps, rng)

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` unless every run satisfies: ``|G| <= k``; each level's pool equals the live
        elements with ``Delta(e | G_{<l}) >= tau``; each pick lies in its level's pool; ``|G| = k`` or every live
        element has ``Delta(e | G) < tau``; the tracked value equals ``f(G)``. Costs oracle calls (tests only)."""
        f, live = self.objective, np.array(sorted(self.live), np.int64)
        for run in self.runs:
            sol = run.solution()
            assert len(sol) <= self.k and len(set(sol)) == len(sol), "solution exceeds k or repeats"
            root = set(live[f.gains(f.empty(), live) >= run.tau].tolist()) if live.size else set()
            assert run.root == root, "root pool differs from the live elements with f(e) >= tau"
            for ell, lvl in enumerate(run.levels):
                want = set(live[f.gains(lvl.state_before, live) >= run.tau].tolist()) if live.size else set()
                assert lvl.pool == want, f"level {ell} pool differs from its definition"
                assert set(lvl.picks) <= lvl.pool and lvl.picks, f"level {ell} picks outside its pool or empty"
            if len(sol) < self.k and live.size:
                assert np.all(f.gains(run.state, live) < run.tau), "a live element still has gain >= tau"
            assert math.isclose(run.value, f.value(sol), rel_tol=1e-9, abs_tol=1e-9), "tracked value is stale"


# ---------------------------------------------------------------- Lattanzi et al. 2020 (baseline port)

class _LattanziRun:
    """One OPT guess of :class:`LattanziDynamic`."""

    def __init__(self, objective, k: int, gamma: float, eps: float, n_levels: int, rng):
        self.f, self.k, self.gamma, self.eps, self.rng = objective, k, gamma, eps, rng
        self.tau = gamma / (2 * k)
        self.T = n_levels
        self.B = [set() for _ in range(self.T + 1)]
        self.A = [set() for _ in range(self.T + 1)]
        self.S = [[] for _ in range(self.T + 1)]
        self.lowest = None
        self.value = 0.0

    def solution(self) -> list[int]:
        return [e for s in self.S for e in s][:self.k]

    def _construct(self, l_begin: int) -> None:
        state, size = self.f.empty(), 0
        for s in self.S[:l_begin]:
            for e in s:
                state = self.f.add(state, e)
                size += 1
        cur = np.array(sorted(self.B[l_begin] | self.A[l_begin]), np.int64)
        cur = cur[self.rng.permutation(cur.size)]
        for ell in range(l_begin, self.T + 1):
            self.A[ell], self.S[ell], self.B[ell] = set(), [], set()
        cur = cur[self.f.gains(state, cur) >= self.tau]
        for ell in range(l_begin, self.T + 1):
            if size >= self.k:
                break
            self.A[ell] = set(cur.tolist())
            if cur.size == 0:
                break
            while cur.size >= (1 << (self.T - ell)) and size < self.k:
                e = int(cur[0])  # first of the shuffled pool; it has gain >= tau since cur is filtered
                self.S[ell].append(e)
                state = self.f.add(state, e)
                size += 1
                cur = cur[self.f.gains(state, cur) >= self.tau]
        self.value = self.f.value(self.solution())

    def insert(self, e: int) -> None:
        if self.f.gains(self.f.empty(), [e])[0] < self.tau:
            return
        for b in self.B:
            b.add(e)
        size = sum(len(s) for s in self.S)
        for ell in range(self.T + 1):
            if len(self.B[ell]) >= (1 << (self.T - ell)) and size < self.k:
                self._construct(ell)
                return

    def delete(self, e: int) -> None:
        for ell in range(self.T + 1):
            self.B[ell].discard(e)
            self.A[ell].discard(e)
        for ell in range(self.T + 1):
            if e in self.S[ell]:
                self.S[ell].remove(e)
                self.value = self.f.value(self.solution())
                self.lowest = ell if self.lowest is None else min(self.lowest, ell)
                if self.value < (1 - self.eps) * self.gamma / 2:
                    self._construct(self.lowest)
                    self.lowest = None
                return


class LattanziDynamic(_Dynamic):
    """Port of Lattanzi et al. (2020)'s simple dynamic algorithm (baseline; see the module docstring).

    ``T = ceil(log2 n)`` levels for a universe of ``n`` elements; same interface as :class:`DynamicSubmodular`.
    """

    def __init__(self, objective, k: int, eps: float = 0.2, seed: int = 0):
        _check_objective(objective)
        self._T = max(0, math.ceil(math.log2(max(objective.n, 1)) - 1e-6))
        super().__init__(objective, k, eps, seed)

    def _make_run(self, gamma, rng):
        return _LattanziRun(self.objective, self.k, gamma, self.eps, self._T, rng)


# ---------------------------------------------------------------- Sieve-Streaming (insertion-only baseline)

class _SieveRun:
    """One guess ``v`` of :class:`SieveStreamingDynamic`; ``order`` is the shared insertion-ordered live set."""

    def __init__(self, objective, k: int, v: float, order: dict):
        self.f, self.k, self.v, self.order = objective, k, v, order
        self.picks: list[int] = []
        self.state, self.value = objective.empty(), 0.0

    def solution(self) -> list[int]:
        return list(self.picks)

    def insert(self, e: int) -> None:
        """The sieve rule: take ``e`` when ``Delta(e | S) >= (v/2 - f(S)) / (k - |S|)``."""
        if len(self.picks) >= self.k:
            return
        g = float(self.f.gains(self.state, [e])[0])
        if g > 0 and g >= (self.v / 2 - self.value) / (self.k - len(self.picks)):
            self.picks.append(e)
            self.state = self.f.add(self.state, e)
            self.value += g

    def delete(self, e: int) -> None:
        """Re-run the sieve from scratch on the surviving stream when ``e`` was one of its picks."""
        if e not in self.picks:
            return
        self.picks, self.state, self.value = [], self.f.empty(), 0.0
        rest, pos, chunk = np.fromiter(self.order, np.int64, len(self.order)), 0, 64
        while pos < rest.size and len(self.picks) < self.k:
            # Vectorised scan (in chunks) for the first element the sequential sieve would take; only the scanned
            # prefix (up to and including the taken element) is charged, as the one-at-a-time sieve evaluates.
            block = rest[pos:pos + chunk]
            gains = self.f.gains(self.state, block)
            thr = (self.v / 2 - self.value) / (self.k - len(self.picks))
            hit = np.flatnonzero((gains > 0) & (gains >= thr))
            if hit.size == 0:
                pos += block.size
                continue
            i = int(hit[0])
            self.f.calls -= block.size - (i + 1)
            e = int(block[i])
            self.picks.append(e)
            self.state = self.f.add(self.state, e)
            self.value += float(gains[i])
            pos += i + 1


class SieveStreamingDynamic(_Dynamic):
    """Sieve-Streaming (Badanidiyuru et al. 2014) with from-scratch re-runs on deletion (baseline; see the module
    docstring). Same interface as :class:`DynamicSubmodular`; ``seed`` is accepted for symmetry and unused."""

    def __init__(self, objective, k: int, eps: float = 0.2, seed: int = 0):
        self._order: dict[int, None] = {}
        super().__init__(objective, k, eps, seed)

    def _make_run(self, gamma, rng):
        return _SieveRun(self.objective, self.k, float(gamma), self._order)

    def insert(self, e: int) -> None:
        """Insert element ``e`` (must not be live): offered to every open sieve."""
        super().insert(e)
        self._order[int(e)] = None

    def delete(self, e: int) -> None:
        """Delete live element ``e``: the sieves that held it re-run on the surviving stream."""
        e = self._check_elem(e)
        if e not in self.live:
            raise ValueError(f"element {e} is not live")
        del self._order[e]
        super().delete(e)


class RecomputeGreedy:
    """Static baseline: lazy greedy on the live set after every update (its oracle calls are counted)."""

    def __init__(self, objective, k: int):
        _check_objective(objective)
        self.objective, self.k = objective, check_int("k", k, minimum=1)
        self.live: set[int] = set()
        self._sol: tuple[list[int], float] = ([], 0.0)

    def insert(self, e: int) -> None:
        """Insert ``e`` and recompute."""
        self.live.add(check_int("element", e, minimum=0, maximum=self.objective.n - 1))
        self._sol = lazy_greedy(self.objective, sorted(self.live), self.k)

    def delete(self, e: int) -> None:
        """Delete ``e`` and recompute."""
        self.live.discard(check_int("element", e, minimum=0, maximum=self.objective.n - 1))
        self._sol = lazy_greedy(self.objective, sorted(self.live), self.k)

    def solution(self) -> tuple[list[int], float]:
        """The current greedy solution and value."""
        return self._sol
