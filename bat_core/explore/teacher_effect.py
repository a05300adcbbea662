"""What the teacher's targets do to the word mix of the training corpus (issue #11).

The student at λ > 0 is trained to reconstruct, besides each document's counts x_d, the teacher's pseudo-document
x̃_d = N_d·softmax(z_d / T) (bat-method.md section 4; clipping left out here). Summed over the training split, the two
give a word mix each: share_t(w) = Σ_d x̃_dw / Σ_d N_d and share_x(w) = Σ_d x_dw / Σ_d N_d. The words whose share the
teacher raises or lowers most are where distillation pulls the topics. Pure numpy/scipy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class WordShift:
    word: str
    observed: float  # share of the word in Σ_d x_d
    teacher: float  # share in Σ_d N_d·softmax(z_d / T)

    @property
    def change(self) -> float:
        return self.teacher - self.observed


@dataclass(frozen=True)
class TeacherEffect:
    raised: list[WordShift]  # largest share gain first
    lowered: list[WordShift]  # largest share loss first
    n_docs: int
    tokens: float
    total_variation: float  # ½ Σ_w |share_t − share_x|: how much of the word mix the teacher moves


def target_totals(dense: Callable[[np.ndarray], np.ndarray], counts: sp.spmatrix, rows: np.ndarray,
                  temperature: float = 1.0, chunk: int = 256) -> np.ndarray:
    """Σ_d N_d·softmax(z_d / T) over ``rows``; ``dense(rows)`` gives the raw teacher logits of those rows (len×V),
    ``counts`` is the corpus's N×V count matrix. Computed in chunks of ``chunk`` documents, float64."""
    rows = np.asarray(rows, dtype=np.int64)
    counts = sp.csr_matrix(counts)
    total = np.zeros(counts.shape[1], dtype=np.float64)
    for s in range(0, len(rows), chunk):
        r = rows[s:s + chunk]
        z = np.asarray(dense(r), dtype=np.float64) / float(temperature)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        n_d = np.asarray(counts[r].sum(axis=1), dtype=np.float64)  # len×1
        total += (n_d * p).sum(axis=0)
    return total


def word_shift(target_sum: np.ndarray, observed_sum: np.ndarray, vocab: list[str], n: int = 15,
               n_docs: int = 0) -> TeacherEffect:
    """The ``n`` words whose share the teacher's targets raise most and the ``n`` they lower most.

    Both sums are over the vocabulary and are normalised to shares; a word moves by ``share_t − share_x``. Words that
    do not move are in neither list.
    """
    t = np.asarray(target_sum, dtype=np.float64).ravel()
    x = np.asarray(observed_sum, dtype=np.float64).ravel()
    if t.shape != x.shape or t.shape[0] != len(vocab):
        raise ValueError(f"size mismatch: targets {t.shape[0]}, observed {x.shape[0]}, vocab {len(vocab)}")
    if x.sum() <= 0 or t.sum() <= 0:
        raise ValueError("no tokens to compare: the sums are zero")
    st_, sx = t / t.sum(), x / x.sum()
    d = st_ - sx
    up = [int(i) for i in np.argsort(-d, kind="stable")[:n] if d[i] > 0]  # ties keep vocabulary order
    down = [int(i) for i in np.argsort(d, kind="stable")[:n] if d[i] < 0]
    mk = lambda i: WordShift(vocab[i], float(sx[i]), float(st_[i]))  # noqa: E731
    return TeacherEffect([mk(i) for i in up], [mk(i) for i in down], int(n_docs), float(x.sum()),
                         float(0.5 * np.abs(d).sum()))


def teacher_effect(dense: Callable[[np.ndarray], np.ndarray], counts: sp.spmatrix, rows: np.ndarray,
                   vocab: list[str], temperature: float = 1.0, n: int = 15) -> TeacherEffect:
    """:func:`word_shift` of the teacher's targets against the observed counts over ``rows`` (the training split)."""
    rows = np.asarray(rows, dtype=np.int64)
    observed = np.asarray(sp.csr_matrix(counts)[rows].sum(axis=0), dtype=np.float64).ravel()
    return word_shift(target_totals(dense, counts, rows, temperature), observed, vocab, n=n, n_docs=len(rows))
