"""BROJA PID (P35): identities, canonical 1-bit examples, brute-force minimum, and the dit reference."""
import numpy as np
import pytest

from sparsejax.algorithms.pid import (
    broja_unique, conditional_mutual_information, entropy, joint_distribution, mutual_information, pid_broja,
)


def _random_joint(rng, shape):
    p = rng.random(shape) ** 3
    p[rng.random(shape) < 0.15] = 0.0  # some zero cells
    return p / p.sum()


def _table(pairs):
    """Joint p[t, x1, x2] uniform over the listed (t, x1, x2) triples."""
    p = np.zeros((2, 2, 2))
    for t, a, b in pairs:
        p[t, a, b] += 1.0 / len(pairs)
    return p


@pytest.mark.parametrize("name, pairs, term", [
    ("unique", [(a, a, b) for a in (0, 1) for b in (0, 1)], "unique_1"),       # Ŷ = Z, S independent
    ("redundant", [(0, 0, 0), (1, 1, 1)], "redundant"),                       # S = Z = Ŷ
    ("synergy", [(a ^ b, a, b) for a in (0, 1) for b in (0, 1)], "synergistic"),  # Z = Ŷ xor S
])
def test_canonical_examples_are_one_bit(name, pairs, term):
    pid = pid_broja(_table(pairs))
    for field in ("unique_1", "unique_2", "redundant", "synergistic"):
        assert getattr(pid, field) == pytest.approx(1.0 if field == term else 0.0, abs=1e-6), (name, field)


def test_identities_and_nonnegativity_on_random_distributions():
    rng = np.random.default_rng(0)
    for _ in range(12):
        p = _random_joint(rng, tuple(rng.integers(2, 4, 3)))
        pid = pid_broja(p)
        assert pid.unique_1 + pid.redundant == pytest.approx(mutual_information(p.sum(2)), abs=1e-12)
        assert pid.unique_1 + pid.synergistic == pytest.approx(conditional_mutual_information(p), abs=1e-12)
        assert pid.unique_2 + pid.redundant == pytest.approx(mutual_information(p.sum(1)), abs=1e-12)
        total = pid.unique_1 + pid.unique_2 + pid.redundant + pid.synergistic
        assert total == pytest.approx(mutual_information(p.reshape(p.shape[0], -1)), abs=1e-12)
        assert min(pid.unique_1, pid.unique_2, pid.redundant, pid.synergistic) >= -1e-7


def _cmi_batch(q):
    """I(T; X1 | X2) in bits for a batch q[..., t, x1, x2] (independent numpy formula)."""
    def h(a, axes):
        a = a.sum(axis=axes) if axes else a
        a = a.reshape(a.shape[:q.ndim - 3] + (-1,))
        return -(np.where(a > 0, a * np.log2(np.where(a > 0, a, 1.0)), 0.0)).sum(-1)
    n = q.ndim
    return h(q, (n - 2,)) + h(q, (n - 3,)) - h(q, ()) - h(q, (n - 3, n - 2))


def test_unique_equals_brute_force_minimum_over_delta_p():
    # binary case: Delta_P is a 2-parameter family (one free cell of each 2x2 (x1, x2) table per t)
    rng = np.random.default_rng(1)
    for _ in range(3):
        p = _random_joint(rng, (2, 2, 2))
        uni, q = broja_unique(p)
        np.testing.assert_allclose(q.sum(2), p.sum(2), atol=1e-7)
        np.testing.assert_allclose(q.sum(1), p.sum(1), atol=1e-7)
        tables = []
        for t in range(2):
            r, c = p[t].sum(1), p[t].sum(0)  # row (x1) and column (x2) sums
            a = np.linspace(max(0.0, r[0] - c[1]), min(r[0], c[0]), 401)
            tables.append(np.stack([np.stack([a, r[0] - a], -1), np.stack([c[0] - a, r[1] - c[0] + a], -1)], -2))
        grid = np.stack(np.broadcast_arrays(tables[0][:, None], tables[1][None, :]), axis=2)  # [i, j, t, x1, x2]
        best = _cmi_batch(np.maximum(grid, 0.0)).min()
        assert uni <= best + 1e-7
        assert uni >= best - 1e-4  # grid resolution


def test_matches_dit_broja():
    import dit
    from dit.pid import PID_BROJA

    # dit's own optimiser reaches the minimum to about 1e-5 (this module agrees with SCS to 1e-9)
    rng = np.random.default_rng(2)
    for shape in ((2, 3, 2),):
        p = rng.random(shape) + 0.05
        p /= p.sum()
        outcomes = [(t, a, b) for t in range(shape[0]) for a in range(shape[1]) for b in range(shape[2])]
        d = dit.Distribution([f"{t}{a}{b}" for t, a, b in outcomes], [p[o] for o in outcomes])
        d.set_rv_names("TAB")
        ref = PID_BROJA(d, ["A", "B"], "T")
        pid = pid_broja(p)
        assert pid.unique_1 == pytest.approx(ref.get_pi((("A",),)), abs=5e-5)
        assert pid.unique_2 == pytest.approx(ref.get_pi((("B",),)), abs=5e-5)
        assert pid.redundant == pytest.approx(ref.get_pi((("A",), ("B",))), abs=5e-5)
        assert pid.synergistic == pytest.approx(ref.get_pi((("A", "B"),)), abs=5e-5)


def test_joint_distribution_and_entropy():
    p = joint_distribution(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), np.array([2, 0, 0, 0]))
    assert p.shape == (2, 2, 3)
    assert p[1, 1, 0] == 0.5 and p[0, 0, 2] == 0.25 and p[1, 0, 0] == 0.25
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(3.0)
    assert joint_distribution(np.array([0]), np.array([0]), np.array([0]), sizes=(2, 3, 4)).shape == (2, 3, 4)


def test_bad_input():
    with pytest.raises(ValueError, match="sum to 1"):
        pid_broja(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        pid_broja(np.array([[[1.5, -0.5], [0, 0]], [[0, 0], [0, 0]]]))
    with pytest.raises(ValueError, match="ndim"):
        pid_broja(np.ones((2, 2)) / 4)
    with pytest.raises(ValueError, match="same length"):
        joint_distribution(np.array([0, 1]), np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="size"):
        joint_distribution(np.array([0, 3]), np.array([0, 0]), np.array([0, 0]), sizes=(2, 2, 2))
    with pytest.raises(TypeError, match="x1"):
        joint_distribution(np.array([0]), np.array([0.5]), np.array([0]))
