"""P36: oracle counting, invariants after every update, (1/2 - eps) OPT on brute-forced tiny instances."""
import itertools

import networkx as nx
import numpy as np
import pytest

from sparsejax.algorithms import (
    Coverage, DynamicSubmodular, FacilityLocation, LattanziDynamic, RecomputeGreedy, SieveStreamingDynamic,
    brute_force_opt, graph_coverage, lazy_greedy, opt_guesses,
)

EPS = 0.2


def random_objective(rng, n):
    if rng.random() < 0.5:
        sets = [rng.choice(12, size=rng.integers(1, 5), replace=False) for _ in range(n)]
        indptr = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
        weights = rng.integers(1, 4, 12).astype(float)
        return lambda: Coverage(indptr, np.concatenate(sets), weights)
    sim = rng.random((6, n)) ** 2
    return lambda: FacilityLocation(sim)


def random_stream(rng, n, steps):
    """An oblivious update sequence (fixed before the algorithm runs) over elements 0..n-1."""
    live, ops = set(), []
    for _ in range(steps):
        if live and (rng.random() < 0.45 or len(live) == n):
            e = int(rng.choice(sorted(live)))
            live.discard(e)
            ops.append(("delete", e))
        else:
            e = int(rng.choice(sorted(set(range(n)) - live)))
            live.add(e)
            ops.append(("insert", e))
    return ops


def test_oracle_counter_counts_exactly():
    f = Coverage(np.array([0, 2, 3, 5]), np.array([0, 1, 1, 2, 3]))
    state = f.empty()
    assert f.calls == 0
    np.testing.assert_array_equal(f.gains(state, [0, 1, 2]), [2, 1, 2])
    assert f.calls == 3
    state = f.add(state, 0)
    assert f.calls == 3                               # adding after a gain is free
    np.testing.assert_array_equal(f.gains(state, [1, 2]), [0, 2])
    assert f.value([0, 2]) == 4 and f.value([]) == 0 and f.calls == 7
    g = FacilityLocation(np.array([[1.0, 0.5], [0.0, 2.0]]))
    np.testing.assert_allclose(g.gains(g.empty(), [0, 1]), [1.0, 2.5])
    assert g.value([0, 1]) == 3.0 and g.calls == 3
    f.reset_calls()
    assert f.calls == 0


def test_objectives_are_monotone_submodular_by_enumeration():
    rng = np.random.default_rng(0)
    for make in (random_objective(rng, 6), random_objective(rng, 6)):
        f = make()
        subsets = [list(s) for r in range(7) for s in itertools.combinations(range(6), r)]
        val = {tuple(s): f.value(s) for s in subsets}
        for s in subsets:
            for t in subsets:
                assert val[tuple(sorted(set(s) | set(t)))] + val[tuple(sorted(set(s) & set(t)))] <= \
                    val[tuple(s)] + val[tuple(t)] + 1e-9
                if set(s) <= set(t):
                    assert val[tuple(s)] <= val[tuple(t)] + 1e-12


def test_graph_coverage_is_closed_neighbourhood():
    f = graph_coverage(nx.path_graph(4))
    assert f.value([1]) == 3 and f.value([0, 3]) == 4 and f.value([0]) == 2


def test_opt_guesses_cover_the_range():
    grid = opt_guesses(np.array([0.0, 2.0, 5.0]), 3, 0.2)
    assert grid[0] == 2.0 and grid[-1] >= 15.0 and grid[-2] < 15.0
    np.testing.assert_allclose(grid[1:] / grid[:-1], 1.2)
    assert opt_guesses(np.zeros(3), 2, 0.2).size == 0


def test_dynamic_invariants_and_half_minus_eps_after_every_update():
    rng = np.random.default_rng(7)
    worst = 1.0
    for trial in range(50):
        n, k = int(rng.integers(4, 11)), int(rng.integers(1, 4))
        make = random_objective(rng, n)
        ref, alg = make(), DynamicSubmodular(make(), k, EPS, seed=trial)
        lat = LattanziDynamic(make(), k, EPS, seed=trial)
        for op, e in random_stream(rng, n, 20):
            getattr(alg, op)(e)
            getattr(lat, op)(e)
            alg.check_invariants()
            opt = brute_force_opt(ref, sorted(alg.live), k)
            for a, bound in ((alg, 0.5 - EPS), (lat, (1 - EPS) / (2 * (1 + EPS)))):
                sol, value = a.solution()
                assert len(sol) <= k and set(sol) <= a.live
                assert value == pytest.approx(ref.value(sol))
                assert value >= bound * opt - 1e-9, (type(a).__name__, trial, op, e, value, opt)
            worst = min(worst, alg.solution()[1] / opt if opt > 0 else 1.0)
    assert worst >= 0.5 - EPS


def sieve_from_scratch(make, k, eps, stream):
    """Sieve-Streaming run once on ``stream`` (insertion only), for the equivalence check."""
    alg = SieveStreamingDynamic(make(), k, eps)
    for e in stream:
        alg.insert(e)
    return alg


def test_sieve_streaming_half_minus_eps_and_equals_a_rerun_after_every_update():
    rng = np.random.default_rng(11)
    worst = 1.0
    for trial in range(30):
        n, k = int(rng.integers(4, 10)), int(rng.integers(1, 4))
        make = random_objective(rng, n)
        ref, alg = make(), SieveStreamingDynamic(make(), k, EPS)
        order = []
        for op, e in random_stream(rng, n, 16):
            getattr(alg, op)(e)
            order.remove(e) if op == "delete" else order.append(e)
            sol, value = alg.solution()
            assert len(sol) <= k and set(sol) <= alg.live
            assert value == pytest.approx(ref.value(sol))
            opt = brute_force_opt(ref, sorted(alg.live), k)
            # the sieve rule run with the guarantee's guess alone: f(S_v) >= v/2 for every v <= OPT
            for run in alg.runs:
                if run.v <= opt + 1e-12:
                    assert run.value >= run.v / 2 - 1e-9
            assert value >= (0.5 - EPS) * opt - 1e-9, (trial, op, e, value, opt)
            worst = min(worst, value / opt if opt > 0 else 1.0)
            fresh = sieve_from_scratch(make, k, EPS, order)
            assert [r.picks for r in alg.runs] == [r.picks for r in fresh.runs]
    assert worst >= 0.5 - EPS


def test_sieve_streaming_counts_one_call_per_open_sieve_on_insertion():
    rng = np.random.default_rng(3)
    make = random_objective(rng, 8)
    alg = SieveStreamingDynamic(make(), 2, EPS)
    alg.objective.reset_calls()
    open_runs = sum(len(r.picks) < 2 for r in alg.runs)
    alg.insert(0)
    assert alg.objective.calls == open_runs
    with pytest.raises(ValueError, match="already live"):
        alg.insert(0)
    with pytest.raises(ValueError, match="not live"):
        alg.delete(1)


def test_deleting_everything_returns_the_empty_set():
    rng = np.random.default_rng(1)
    make = random_objective(rng, 9)
    for cls in (DynamicSubmodular, LattanziDynamic, SieveStreamingDynamic):
        alg = cls(make(), 3, EPS, seed=0)
        for e in rng.permutation(9):
            alg.insert(int(e))
        for e in rng.permutation(9):
            alg.delete(int(e))
        assert alg.solution() == ([], 0.0)
        if cls is DynamicSubmodular:
            alg.check_invariants()
            assert all(not run.levels and not run.root for run in alg.runs)


def test_recompute_greedy_and_lazy_greedy_match_plain_greedy():
    rng = np.random.default_rng(2)
    f = random_objective(rng, 10)()
    picks, value = lazy_greedy(f, range(10), 3)
    state, plain = f.empty(), []
    for _ in range(3):
        g = f.gains(state, range(10))
        e = int(np.argmax(g))
        plain.append(e)
        state = f.add(state, e)
    assert value == pytest.approx(f.value(plain)) and len(picks) == 3
    rg = RecomputeGreedy(f, 3)
    for e in range(10):
        rg.insert(e)
    assert rg.solution()[1] == pytest.approx(value)


def test_update_cost_is_sublinear_on_a_sliding_window():
    g = nx.barabasi_albert_graph(512, 3, seed=0)
    f = graph_coverage(g)
    alg = DynamicSubmodular(f, 5, 0.3, seed=0)
    f.reset_calls()
    order = np.random.default_rng(0).permutation(512)
    for i, e in enumerate(order):
        alg.insert(int(e))
        if i >= 128:
            alg.delete(int(order[i - 128]))
    per_update = f.calls / (512 + 384)
    greedy_calls = f.calls
    lazy_greedy(f, range(128), 5)
    assert per_update < 0.5 * len(alg.runs) * 128      # far below one full pass per guess and update
    assert f.calls - greedy_calls >= 128                # one recompute costs at least one gain per live element


def test_bad_input_names_the_argument():
    f = Coverage(np.array([0, 1, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="k must be >= 1"):
        DynamicSubmodular(f, 0)
    with pytest.raises(ValueError, match="eps"):
        LattanziDynamic(f, 1, eps=1.5)
    with pytest.raises(TypeError, match="objective must provide"):
        DynamicSubmodular(object(), 1)
    alg = DynamicSubmodular(f, 1)
    with pytest.raises(ValueError, match="element must be >= 0 and <= 1"):
        alg.insert(2)
    with pytest.raises(ValueError, match="not live"):
        alg.delete(0)
    alg.insert(0)
    with pytest.raises(ValueError, match="already live"):
        alg.insert(0)
    with pytest.raises(ValueError, match="sim must be nonnegative"):
        FacilityLocation(-np.ones((2, 2)))
    with pytest.raises(ValueError, match="indptr"):
        Coverage(np.array([1, 2]), np.array([0]))
    with pytest.raises(ValueError, match="elements must lie"):
        f.gains(f.empty(), [5])


def test_sieve_rerun_charges_exactly_the_sequential_calls():
    rng = np.random.default_rng(5)
    for _ in range(5):
        n, k = 9, 3
        make = random_objective(rng, n)
        alg = SieveStreamingDynamic(make(), k, EPS)
        order = [int(e) for e in rng.permutation(n)]
        for e in order:
            alg.insert(e)
        victim = alg.solution()[0][0]
        order.remove(victim)
        expected, ref = 0, make()
        for run in alg.runs:
            if victim in run.picks:
                picks, state, value = [], ref.empty(), 0.0
                for x in order:
                    if len(picks) >= k:
                        break
                    g = float(ref.gains(state, [x])[0])
                    expected += 1
                    if g > 0 and g >= (run.v / 2 - value) / (k - len(picks)):
                        picks, state, value = picks + [x], ref.add(state, x), value + g
        alg.objective.reset_calls()
        alg.delete(victim)
        assert alg.objective.calls == expected
