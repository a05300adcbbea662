"""Topic-quality metrics as pure functions over numpy / scipy.sparse (bat-method.md section 5).

NPMI uses document co-occurrence in a reference bag-of-words matrix (dev, test, or an external corpus vectorised with
the same vocabulary). Co-occurrence counts come from one sparse product over the union of all topics' top words, so
scoring 50 topics on thousands of documents takes milliseconds and can run every epoch.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def top_words(beta: np.ndarray, n: int = 10) -> np.ndarray:
    """Indices of the ``n`` highest-weight words of each topic (rows of ``beta``), best first."""
    beta = np.asarray(beta)
    n = min(n, beta.shape[1])
    part = np.argpartition(-beta, n - 1, axis=1)[:, :n]
    order = np.take_along_axis(beta, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def npmi_per_topic(top_idx: np.ndarray, ref_counts: sp.spmatrix | np.ndarray) -> np.ndarray:
    """NPMI of each topic's top words: the mean over word pairs of

    NPMI(i, j) = log(n·c_ij / (c_i·c_j)) / (−log(c_ij / n)),

    with c the number of reference documents containing the word(s) and n the number of documents. A pair that never
    co-occurs scores 0 (as in the original code), and a pair found in every document scores 1 (the c_ij = n guard).
    ``top_idx`` is K×n (or any (..., K, n) stack, e.g. every member's topics); the result drops the last dimension.
    """
    top_idx = np.asarray(top_idx)
    return NpmiScorer(ref_counts, words=np.unique(top_idx)).per_topic(top_idx)


class NpmiScorer:
    """Document co-occurrence counts of a reference corpus, kept so that many topic lists can be scored fast.

    Training scores every member's topics every epoch against the same dev split: the co-document counts c_ij
    (one sparse product DᵀD of the binary doc-word matrix) are computed once, and each call is then a table lookup
    of K·n(n−1)/2 pairs per member, for all members at once. ``words`` restricts the table to a subset of the
    vocabulary (what a one-off score needs); without it the whole V×V table is kept, dense while V ≤ ``dense_limit``
    (float32: 16 MB at V = 2,000) and sparse beyond.
    """

    def __init__(self, ref_counts: sp.spmatrix | np.ndarray, words: np.ndarray | None = None,
                 dense_limit: int = 4096) -> None:
        ref = sp.csc_matrix(ref_counts)
        self.n = ref.shape[0]
        vocab = ref.shape[1]
        self.words = np.arange(vocab) if words is None else np.asarray(words, dtype=np.int64)
        self._pos = np.full(vocab, -1, dtype=np.int64)  # vocabulary id → row of the table
        self._pos[self.words] = np.arange(len(self.words))
        sub = (ref[:, self.words] > 0).astype(np.float64)
        co = (sub.T @ sub).tocsr()  # |U|×|U| co-document counts; diagonal = document frequencies
        self._dense = len(self.words) <= dense_limit
        self._co: np.ndarray | sp.csr_matrix = co.toarray().astype(np.float32) if self._dense else co
        self._df = co.diagonal().astype(np.float64)

    def per_topic(self, top_idx: np.ndarray) -> np.ndarray:
        """NPMI of every topic in a (..., K, n) array of word ids: shape (..., K)."""
        top_idx = np.asarray(top_idx)
        m = top_idx.shape[-1]
        if self.n == 0 or m < 2:
            return np.zeros(top_idx.shape[:-1])
        pos = self._pos[top_idx]
        if (pos < 0).any():
            raise ValueError("top_idx holds words this scorer was not built for")
        iu, ju = np.triu_indices(m, k=1)
        a, b = pos[..., iu], pos[..., ju]  # (..., K, pairs)
        if self._dense:
            cij = self._co[a, b]
        else:
            cij = np.asarray(self._co[a.ravel(), b.ravel()], dtype=np.float64).reshape(a.shape)
        return _npmi(cij, self._df[a], self._df[b], self.n).mean(axis=-1)


    def pairs_seen(self, top_idx: np.ndarray) -> float:
        """The share of top-word pairs (over every topic) found together in at least one reference document. A pair
        never seen together scores 0, so where most are unseen (a small split of short texts) NPMI says little."""
        top_idx = np.asarray(top_idx)
        m = top_idx.shape[-1]
        if self.n == 0 or m < 2:
            return 0.0
        iu, ju = np.triu_indices(m, k=1)
        pos = self._pos[top_idx]
        a, b = pos[..., iu], pos[..., ju]
        cij = self._co[a, b] if self._dense else np.asarray(self._co[a.ravel(), b.ravel()]).reshape(a.shape)
        return float((np.asarray(cij) > 0).mean())

    def doc_frequency(self, top_idx: np.ndarray) -> float:
        """The mean number of reference documents that contain a top word: rarer, more specific words score lower
        (smoothing promotes them, and a small reference rewards them)."""
        return float(self._df[self._pos[np.asarray(top_idx)]].mean())


def _npmi(cij: np.ndarray, ci: np.ndarray, cj: np.ndarray, n: int) -> np.ndarray:
    """Pairwise NPMI from document counts (bat-method.md section 5), with the c_ij = 0 and c_ij = n guards."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(n) + np.log(cij) - np.log(ci) - np.log(cj)
        denom = np.log(n) - np.log(cij)
        val = pmi / denom
    val = np.where(cij <= 0, 0.0, val)
    return np.where((cij >= n) & (cij > 0), 1.0, val)


def npmi(top_idx: np.ndarray, ref_counts: sp.spmatrix | np.ndarray) -> float:
    """Mean topic NPMI (the model score)."""
    return float(npmi_per_topic(top_idx, ref_counts).mean())


def topic_uniqueness(top_idx: np.ndarray) -> float:
    """TU (Nan et al. 2019): mean over topics and their top words of 1 / (number of topics listing that word)."""
    top_idx = np.asarray(top_idx)
    words, counts = np.unique(top_idx, return_counts=True)
    cnt = dict(zip(words.tolist(), counts.tolist()))
    return float(np.mean([[1.0 / cnt[w] for w in row] for row in top_idx.tolist()]))


def perplexity(counts: sp.spmatrix | np.ndarray, probs: np.ndarray) -> float:
    """exp(−Σ_dv x_dv log p_dv / Σ_dv x_dv): per-token perplexity of word distributions ``probs`` (docs×V)."""
    x = sp.csr_matrix(counts)
    logp = np.log(np.asarray(probs, dtype=np.float64) + 1e-10)
    coo = x.tocoo()
    nll = -(coo.data * logp[coo.row, coo.col]).sum()
    return float(np.exp(nll / max(x.sum(), 1e-12)))


def robust_summary(per_topic: np.ndarray, artefact_threshold: float = 0.9) -> dict[str, float]:
    """Mean, median and mean without near-perfect (≥ 0.9) topics, so one artefact topic cannot decide a comparison."""
    v = np.asarray(per_topic, dtype=float)
    keep = v[v < artefact_threshold]
    return {"mean": float(v.mean()), "median": float(np.median(v)),
            "mean_wo_artefacts": float(keep.mean()) if len(keep) else float("nan"),
            "n_artefacts": int((v >= artefact_threshold).sum())}
