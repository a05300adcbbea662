"""Head-to-head topic alignment by Jensen–Shannon divergence (bat-method.md section 5 and section 10).

Each topic's row of Bᵀ (the deviation from the background) is turned into a distribution over the vocabulary with a
softmax; topics of two models are then matched one-to-one so that the *sum* of Jensen–Shannon divergences is
smallest (the Hungarian algorithm, not the paper's greedy matching). Pure numpy/scipy.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_EPS = 1e-12


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed in float64 and shifted by the row maximum for stability."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (base 2) of each row, with 0·log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -t.sum(axis=-1)


def jensen_shannon(p: np.ndarray, q: np.ndarray, chunk_elems: int = 2_000_000) -> np.ndarray:
    """Pairwise Jensen–Shannon divergence (base 2, so in [0, 1]) between the rows of ``p`` and the rows of ``q``.

    ``p`` is K_a×V and ``q`` is K_b×V, each row a probability distribution (rows are renormalised; negative entries
    are an error). Returns a K_a×K_b matrix. ``JSD(P, Q) = H(M) − (H(P) + H(Q)) / 2`` with ``M = (P + Q) / 2``;
    rows of ``p`` are processed in chunks so memory stays near ``chunk_elems`` floats.
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    if p.shape[1] != q.shape[1]:
        raise ValueError(f"distributions are over different vocabularies: {p.shape[1]} vs {q.shape[1]} words")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("distributions must be non-negative")
    p = p / np.maximum(p.sum(axis=1, keepdims=True), _EPS)
    q = q / np.maximum(q.sum(axis=1, keepdims=True), _EPS)
    hp = _entropy_bits(p)
    hq = _entropy_bits(q)
    out = np.empty((p.shape[0], q.shape[0]), dtype=np.float64)
    step = max(1, chunk_elems // max(1, q.shape[0] * q.shape[1]))
    for s in range(0, p.shape[0], step):
        m = 0.5 * (p[s:s + step, None, :] + q[None, :, :])  # chunk × K_b × V
        out[s:s + step] = _entropy_bits(m) - 0.5 * (hp[s:s + step, None] + hq[None, :])
    return np.clip(out, 0.0, 1.0)


def align_topics(beta_a: np.ndarray, beta_b: np.ndarray) -> list[tuple[int, int, float]]:
    """Optimal one-to-one matching of the topics of two models by Jensen–Shannon divergence.

    ``beta_a`` (K_a×V) and ``beta_b`` (K_b×V) are topic-word weights (rows of Bᵀ); each row is softmaxed over the
    vocabulary. Returns ``min(K_a, K_b)`` triples ``(topic in a, topic in b, JSD)``, best matched (smallest JSD)
    first. Ties in JSD keep the order of topic ``i``.
    """
    pa, pb = softmax_rows(beta_a), softmax_rows(beta_b)
    d = jensen_shannon(pa, pb)
    rows, cols = linear_sum_assignment(d)
    pairs = [(int(i), int(j), float(d[i, j])) for i, j in zip(rows, cols)]
    pairs.sort(key=lambda t: (t[2], t[0]))
    return pairs
