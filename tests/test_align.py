"""Jensen–Shannon divergence and optimal topic alignment against hand-computed examples."""

from itertools import permutations

import numpy as np
import pytest

from bat_core.evaluation.align import align_topics, jensen_shannon, softmax_rows


def test_jsd_hand_examples():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    d = jensen_shannon(p, q)
    assert d.shape == (2, 3)
    # disjoint supports: exactly 1 bit
    assert d[0, 0] == pytest.approx(1.0)
    # identical distributions: 0
    assert d[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert d[1, 2] == pytest.approx(0.0, abs=1e-12)
    # [.5,.5] vs [1,0]: M = [.75,.25]; H(M) − (H(P)+H(Q))/2 = 0.811278 − 0.5
    h_m = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert d[1, 1] == pytest.approx(h_m - 0.5)
    assert d[1, 1] == pytest.approx(0.311278, abs=1e-6)


def test_jsd_matches_scipy_and_is_symmetric():
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(30), size=4)
    q = rng.dirichlet(np.ones(30), size=5)
    d = jensen_shannon(p, q, chunk_elems=60)  # force several chunks
    ref = np.array([[jensenshannon(a, b, base=2) ** 2 for b in q] for a in p])
    np.testing.assert_allclose(d, ref, atol=1e-10)
    np.testing.assert_allclose(jensen_shannon(q, p), d.T, atol=1e-12)


def test_jsd_rejects_bad_input():
    with pytest.raises(ValueError):
        jensen_shannon(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError):
        jensen_shannon(-np.ones((1, 3)), np.ones((1, 3)))


def test_softmax_rows():
    s = softmax_rows(np.array([[0.0, 0.0], [1000.0, 0.0]]))
    np.testing.assert_allclose(s, [[0.5, 0.5], [1.0, 0.0]], atol=1e-12)


def test_align_recovers_a_permutation():
    a = np.log(np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]))
    b = a[[2, 0, 1]] + 3.0  # permuted, and shifted (softmax ignores a constant per row)
    pairs = align_topics(a, b)
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 1), (1, 2), (2, 0)]
    assert all(d == pytest.approx(0.0, abs=1e-12) for _, _, d in pairs)


def test_align_is_optimal_not_greedy():
    # Hand example where greedy fails: the closest single pair (a0, b0) forces a terrible second pair.
    a = np.log(np.array([[0.50, 0.50, 1e-9], [0.98, 0.01, 0.01]]))
    b = np.log(np.array([[0.60, 0.40, 1e-9], [0.33, 0.34, 0.33]]))
    d = jensen_shannon(softmax_rows(a), softmax_rows(b))
    greedy = d[0, 0] + d[1, 1]
    pairs = align_topics(a, b)
    # JSD: a0-b0 0.0073, a0-b1 0.1887, a1-b0 0.2094, a1-b1 0.4013 → greedy 0.4086, optimal 0.3981
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (1, 0)]
    total = sum(x for _, _, x in pairs)
    assert total == pytest.approx(0.398083, abs=1e-5)
    assert total < greedy - 0.01
    # brute force agrees for random models
    rng = np.random.default_rng(1)
    ba, bb = rng.normal(size=(5, 40)) * 2, rng.normal(size=(5, 40)) * 2
    d = jensen_shannon(softmax_rows(ba), softmax_rows(bb))
    best = min(sum(d[i, p[i]] for i in range(5)) for p in permutations(range(5)))
    pairs = align_topics(ba, bb)
    assert sum(x for _, _, x in pairs) == pytest.approx(best)
    assert [x for _, _, x in pairs] == sorted(x for _, _, x in pairs)
    assert sorted(i for i, _, _ in pairs) == list(range(5)) and sorted(j for _, j, _ in pairs) == list(range(5))


def test_align_unequal_sizes():
    rng = np.random.default_rng(2)
    pairs = align_topics(rng.normal(size=(3, 10)), rng.normal(size=(5, 10)))
    assert len(pairs) == 3
    assert len({j for _, j, _ in pairs}) == 3
