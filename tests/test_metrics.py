"""NPMI, topic uniqueness and perplexity against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from bat_core.evaluation.metrics import (
    NpmiScorer,
    npmi,
    npmi_per_topic,
    perplexity,
    robust_summary,
    top_words,
    topic_uniqueness,
)

# 4 reference documents over 4 words
REF = sp.csr_matrix(np.array([[2, 1, 0, 0],
                              [1, 1, 0, 0],
                              [0, 0, 1, 3],
                              [1, 0, 1, 0]]))


def test_npmi_hand_computed():
    # words 0,1: c0 = 3, c1 = 2, c01 = 2, n = 4 → log(4·2/(3·2)) / −log(2/4)
    expected01 = math.log(4 * 2 / (3 * 2)) / -math.log(2 / 4)
    # words 2,3: c2 = 2, c3 = 1, c23 = 1 → log(4·1/(2·1)) / −log(1/4) = 0.5
    # words 1,3 never co-occur → 0
    scores = npmi_per_topic(np.array([[0, 1], [2, 3], [1, 3]]), REF)
    assert np.allclose(scores, [expected01, 0.5, 0.0])
    # three words: mean over the 3 pairs (0,1), (0,2), (1,2)
    e02 = math.log(4 * 1 / (3 * 2)) / -math.log(1 / 4)
    assert np.isclose(npmi_per_topic(np.array([[0, 1, 2]]), REF)[0], (expected01 + e02 + 0.0) / 3)
    assert np.isclose(npmi(np.array([[0, 1], [2, 3]]), REF), (expected01 + 0.5) / 2)


def test_npmi_guards():
    everywhere = sp.csr_matrix(np.ones((3, 3)))
    assert npmi_per_topic(np.array([[0, 1]]), everywhere)[0] == 1.0  # c_ij = n: no division by zero
    absent = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0]]))
    assert npmi_per_topic(np.array([[1, 2]]), absent)[0] == 0.0  # words never seen in the reference


def test_top_words_order():
    beta = np.array([[0.1, 0.5, -1.0, 0.3], [3.0, 2.0, 1.0, 0.0]])
    assert top_words(beta, 3).tolist() == [[1, 3, 0], [0, 1, 2]]


def test_topic_uniqueness():
    assert topic_uniqueness(np.array([[0, 1], [2, 3]])) == 1.0
    assert topic_uniqueness(np.array([[0, 1], [0, 1]])) == 0.5
    assert np.isclose(topic_uniqueness(np.array([[0, 1], [0, 2]])), (0.5 + 1 + 0.5 + 1) / 4)


def test_perplexity_uniform_is_vocab_size():
    counts = sp.csr_matrix(np.array([[1, 2, 0, 1]]))
    assert np.isclose(perplexity(counts, np.full((1, 4), 0.25)), 4.0)


def test_robust_summary_ignores_artefact_topics():
    s = robust_summary(np.array([0.1, 0.2, 0.95]))
    assert s["n_artefacts"] == 1 and np.isclose(s["mean_wo_artefacts"], 0.15) and np.isclose(s["median"], 0.2)


def test_npmi_scorer_scores_stacks_of_topics_like_npmi_per_topic():
    rng = np.random.default_rng(0)
    ref = sp.csr_matrix(rng.poisson(0.3, (40, 50)))
    tops = np.stack([np.stack([rng.choice(50, 6, replace=False) for _ in range(4)]) for _ in range(3)])  # M×K×n
    expected = np.stack([npmi_per_topic(t, ref) for t in tops])
    assert np.allclose(NpmiScorer(ref).per_topic(tops), expected)
    assert np.allclose(NpmiScorer(ref, dense_limit=0).per_topic(tops), expected)  # the sparse table
    assert np.allclose(npmi_per_topic(tops, ref), expected)
    assert np.isclose(NpmiScorer(REF).per_topic(np.array([[0, 1]]))[0], math.log(4 * 2 / 6) / -math.log(2 / 4))
