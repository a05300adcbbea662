"""The teacher's word shift: Σ_d N_d·softmax(z_d / T) against Σ_d x_d, as shares, on a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bat_core.explore.teacher_effect import target_totals, teacher_effect, word_shift

VOCAB = ["a", "b", "c", "d"]
# two training documents (rows 0 and 2) and one that is not in the split (row 1)
COUNTS = sp.csr_matrix(np.array([[2, 2, 0, 0], [9, 0, 0, 9], [0, 0, 4, 0]], dtype=np.float32))
# logits: doc 0 puts everything on c (ln 3 over a flat rest), doc 2 is flat
LOGITS = np.array([[0, 0, np.log(3), np.log(3)], [5, 5, 5, 5], [0, 0, 0, 0]], dtype=np.float32)


def dense(rows):
    return LOGITS[np.asarray(rows)]


def test_target_totals_by_hand():
    # doc 0: N = 4, softmax = [1, 1, 3, 3] / 8 → [0.5, 0.5, 1.5, 1.5]; doc 2: N = 4, flat → [1, 1, 1, 1]
    tot = target_totals(dense, COUNTS, np.array([0, 2]), chunk=1)
    np.testing.assert_allclose(tot, [1.5, 1.5, 2.5, 2.5], rtol=1e-6)
    # T = 2 flattens: doc 0 softmax ∝ [1, 1, √3, √3]
    w = np.array([1, 1, np.sqrt(3), np.sqrt(3)])
    np.testing.assert_allclose(target_totals(dense, COUNTS, np.array([0]), temperature=2.0), 4 * w / w.sum(),
                               rtol=1e-6)


def test_word_shift_by_hand():
    eff = teacher_effect(dense, COUNTS, np.array([0, 2]), VOCAB, n=2)
    # observed over rows 0, 2: [2, 2, 4, 0] / 8 = [.25, .25, .5, 0]; targets [1.5, 1.5, 2.5, 2.5] / 8
    # change: [-.0625, -.0625, -.1875, +.3125]
    assert [w.word for w in eff.raised] == ["d"]
    assert eff.raised[0].observed == 0 and eff.raised[0].teacher == pytest.approx(2.5 / 8)
    assert [w.word for w in eff.lowered] == ["c", "a"]  # biggest loss first; ties keep vocabulary order
    assert eff.lowered[0].change == pytest.approx(-0.1875)
    assert eff.n_docs == 2 and eff.tokens == 8
    assert eff.total_variation == pytest.approx(0.3125)
    # row 1 (not in the split) never counts: its huge d count would make d lowered, not raised
    both = teacher_effect(dense, COUNTS, np.array([0, 1, 2]), VOCAB, n=2)
    assert "d" not in [w.word for w in both.raised]


def test_word_shift_checks_and_no_change():
    same = word_shift(np.array([1.0, 3.0]), np.array([2.0, 6.0]), ["x", "y"])
    assert same.raised == [] and same.lowered == [] and same.total_variation == 0
    with pytest.raises(ValueError, match="size mismatch"):
        word_shift(np.ones(3), np.ones(2), ["x", "y"])
    with pytest.raises(ValueError, match="zero"):
        word_shift(np.zeros(2), np.ones(2), ["x", "y"])
