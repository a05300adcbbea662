"""Coherence a user can trust: how many top-word pairs a reference saw, which NPMI to read, and the CLI's lines."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bat_core.cli import coherence_lines
from bat_core.evaluation.coherence import MIN_PAIRS_SEEN, coherence, which_to_read
from bat_core.evaluation.metrics import NpmiScorer, npmi_per_topic

# 4 documents × 4 words: words 0 and 1 always together, 2 alone, 3 with 0 once
DOCS = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 0, 1], [0, 0, 1, 0], [1, 1, 0, 0]], dtype=np.float32))


def test_pairs_seen_and_document_frequency_by_hand():
    s = NpmiScorer(DOCS)
    top = np.array([[0, 1, 3], [0, 2, 3]])  # pairs: (0,1) (0,3) (1,3) | (0,2) (0,3) (2,3)
    assert s.pairs_seen(top) == pytest.approx(4 / 6)  # (0,1), (0,3), (1,3), (0,3) seen; (0,2), (2,3) never
    assert s.doc_frequency(top) == pytest.approx((3 + 3 + 1 + 3 + 1 + 1) / 6)


def test_a_sparse_test_split_points_to_the_larger_reference():
    top = np.array([[0, 1, 3], [0, 2, 3]])
    test = DOCS[[2]]  # one document: no pair seen together
    c = coherence(top, test, DOCS)
    assert c["test_pairs_seen"] == 0.0 and c["test_sparse"] and c["test_npmi"] == 0.0
    assert c["corpus_npmi"] == pytest.approx(float(npmi_per_topic(top, DOCS).mean()))
    assert c["reference_npmi"] is None
    assert not coherence(top, DOCS, DOCS)["test_sparse"]  # the whole corpus as the test split: 4/6 ≥ 0.5
    assert MIN_PAIRS_SEEN == 0.5
    assert which_to_read(True, 0.6, 0.3) == "reference" and which_to_read(True, None, 0.3) == "corpus"
    assert which_to_read(False, 0.6, 0.3) == "test"
    # a reference that saw few pairs is read only if it saw more than the whole corpus: three French lines given
    # for English topics saw 1 %, and the warning sent the reader there instead of the corpus's 31 %
    assert which_to_read(True, 0.01, 0.31) == "corpus" and which_to_read(True, 0.4, 0.3) == "reference"


def test_the_cli_never_shows_a_sparse_gain_alone():
    stat = lambda m, n=3: {"mean": m, "std": 0.0, "n": n}
    entry = {"test_npmi": stat(0.04), "corpus_npmi": stat(0.2), "test_pairs_seen": stat(0.2),
             "corpus_pairs_seen": stat(0.9), "top_word_df": stat(30.0),
             "paired_test_npmi_diff_vs_baseline": {**stat(0.01), "won": 3},
             "paired_corpus_npmi_diff_vs_baseline": {**stat(-0.01), "won": 0}}
    lines = coherence_lines({"by_lambda": {"0.5": entry}, "test_sparse": True, "read": "corpus",
                             "min_pairs_seen": 0.5})
    assert "test split 0.0400 (20% of pairs seen), +0.0100 vs λ=0 (3/3 seeds)" in lines[0]
    assert "whole corpus 0.2000 (90% of pairs seen), -0.0100 vs λ=0 (0/3 seeds)" in lines[0]
    assert lines[-1].startswith("warning: the test split saw fewer than 50%") and "whole corpus" in lines[-1]
