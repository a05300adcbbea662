"""A nonparametric teacher head: a document's predicted bag of words is the word distribution of its nearest
neighbours.

    p_d = (1 − ε) · mean_{j ∈ kNN(d)} x_j / N_j  +  ε · p_unigram,      z_d = log p_d

Neighbours are *other* training documents, so a training document never sees its own words: the target is
out-of-sample by construction, with no folds to train. What "a document like this one" means is the teacher's
*kind*: the cosine of the frozen transformer's embeddings (``transformer``), of sublinear TF-IDF vectors of the
documents' own words (``lexical``: no transformer, the control), a mix of the two (``hybrid``), or of random vectors
(``random``: the null control). ``auto`` takes whichever predicts the dev split best. k, ε and the hybrid's mix are
chosen by dev perplexity, the paper's teacher criterion. See benchmarks/results/tuning.md for why this head exists.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.preprocessing import normalize

K_GRID = (5, 10, 20, 30, 50, 100)
SMOOTHING_GRID = (0.05, 0.1, 0.2, 0.3, 0.5)


Features = torch.Tensor | sp.spmatrix  # one row per document of the corpus


def _normalised(f: Features) -> Features:
    if sp.issparse(f):
        return sp.csr_matrix(normalize(sp.csr_matrix(f, dtype=np.float32), norm="l2", axis=1))
    return torch.nn.functional.normalize(torch.as_tensor(f).float().cpu(), dim=1)


def _cosine(f: Features, ft: Features, d: np.ndarray) -> torch.Tensor:
    if sp.issparse(f):
        return torch.from_numpy(np.asarray((f[d] @ ft.T).todense(), dtype=np.float32))
    return f[torch.as_tensor(d)] @ ft.T


class KnnIndex:
    """Normalised document vectors of the training documents and their word distributions: built once per teacher,
    then asked for logits batch by batch (the export) and for the dev-perplexity grid (the selection).

    ``features`` is one matrix (dense tensor or scipy sparse) or several ``(matrix, weight)`` views; the similarity
    of two documents is Σ weight · cosine over the views, so a hybrid teacher (lexical and transformer) needs no
    feature engineering: its weights are a plain mix of the two cosines."""

    def __init__(self, features: Features | list[tuple[Features, float]], counts: sp.csr_matrix, train: np.ndarray,
                 log_unigram: np.ndarray) -> None:
        self.train = np.asarray(train)
        self._normalised: dict[int, tuple[Features, Features, Features]] = {}  # id → (input, all rows, train rows)
        self.views = self._views(features)
        lengths = np.asarray(counts[self.train].sum(axis=1)).ravel()
        self.p_train = sp.csr_matrix(sp.diags(1.0 / np.maximum(lengths, 1.0)) @ counts[self.train])
        self.position = np.full(counts.shape[0], -1, dtype=np.int64)
        self.position[self.train] = np.arange(len(self.train))
        self.counts = counts
        self.unigram = np.exp(np.asarray(log_unigram, dtype=np.float64))[None, :]

    def _views(self, features: Features | list[tuple[Features, float]]) -> list[tuple[Features, Features, float]]:
        """(normalised rows, normalised training rows, weight) per view; each matrix is normalised once per index
        family (:meth:`with_features` shares the memo), however many hybrid mixes use it."""
        views = features if isinstance(features, list) else [(features, 1.0)]
        out = []
        for f, w in views:
            if w <= 0:
                continue
            if id(f) not in self._normalised:
                fn = _normalised(f)
                ft = fn[self.train] if sp.issparse(fn) else fn[torch.as_tensor(self.train)]
                self._normalised[id(f)] = (f, fn, ft)  # f kept alive, so that its id is not reused
            _, fn, ft = self._normalised[id(f)]
            out.append((fn, ft, float(w)))
        return out

    def with_features(self, features: Features | list[tuple[Features, float]]) -> KnnIndex:
        """The same training documents and word distributions with another notion of neighbour (no recomputation of
        what the two share)."""
        other = copy.copy(self)
        other.views = self._views(features)
        return other

    def similarity(self, d: np.ndarray) -> torch.Tensor:
        """len(d) × (training documents): the weighted cosine of every view."""
        sims = [w * _cosine(f, ft, d) for f, ft, w in self.views]
        return sims[0] if len(sims) == 1 else torch.stack(sims).sum(0)

    def neighbours(self, docs: np.ndarray, k: int, block: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(document block, its k nearest training documents, most similar first), never a document itself."""
        k = max(1, min(k, len(self.train) - 1))
        block = max(16, min(block, 2 ** 26 // max(1, len(self.train))))  # a block's similarities stay ≤ 256 MB
        for s in range(0, len(docs), block):
            d = np.asarray(docs[s: s + block])
            sim = self.similarity(d)
            own = self.position[d]
            mine = np.flatnonzero(own >= 0)
            sim[torch.as_tensor(mine), torch.as_tensor(own[mine])] = -float("inf")
            yield d, sim.topk(k, dim=1).indices.numpy()

    def mean_distribution(self, idx: np.ndarray) -> np.ndarray:
        """Mean word distribution of the neighbours in each row of ``idx``."""
        n, k = idx.shape
        weights = sp.csr_matrix((np.full(idx.size, 1.0 / k), idx.ravel(), np.arange(0, idx.size + 1, k)),
                                shape=(n, len(self.train)))
        return np.asarray((weights @ self.p_train).todense())

    def logits(self, docs: np.ndarray, k: int, smoothing: float) -> torch.Tensor:
        """len(docs)×V float32 logits: log of the smoothed mean word distribution of each document's k neighbours."""
        out = [np.log((1 - smoothing) * self.mean_distribution(idx) + smoothing * self.unigram).astype(np.float32)
               for _, idx in self.neighbours(docs, k)]
        return torch.from_numpy(np.concatenate(out)) if out else torch.zeros(0, self.counts.shape[1])

    def select(self, dev: np.ndarray, k: int | None = None, smoothing: float | None = None
               ) -> tuple[int, float, float]:
        """(k, ε, dev perplexity) with the lowest per-token perplexity on ``dev``, over the grid for whichever of
        ``k`` / ``smoothing`` is None. This is how the paper picks its teacher (dev perplexity), and it adapts the
        head to the corpus: many short, loosely related documents want more neighbours and more smoothing, measured
        on mini20ng, where the NewsArticles-sized setting (k = 10, ε = 0.05) predicted held-out documents worse than
        word frequencies alone. Neighbours are searched once, for the largest k; smaller k use their first columns."""
        ks = (k,) if k else K_GRID
        eps_grid = (smoothing,) if smoothing else SMOOTHING_GRID
        nll = {(kk, e): 0.0 for kk in ks for e in eps_grid}
        total = 0.0
        for d, idx in self.neighbours(dev, max(ks)):
            x = self.counts[d].tocoo()
            total += float(x.data.sum())
            for kk in ks:
                p = self.mean_distribution(idx[:, :min(kk, idx.shape[1])])
                for e in eps_grid:
                    z = np.log((1 - e) * p[x.row, x.col] + e * self.unigram[0, x.col])
                    nll[(kk, e)] -= float((x.data * z).sum())
        (kk, e), best = min(nll.items(), key=lambda item: item[1])
        return kk, e, float(np.exp(best / max(total, 1e-12)))


def knn_logits(features: torch.Tensor, counts: sp.csr_matrix, train: np.ndarray, docs: np.ndarray, k: int,
               smoothing: float, log_unigram: np.ndarray) -> torch.Tensor:
    """One-off :meth:`KnnIndex.logits` (itself excluded from every document's neighbours)."""
    return KnnIndex(features, counts, train, log_unigram).logits(docs, k, smoothing)


def select_knn(features: torch.Tensor, counts: sp.csr_matrix, train: np.ndarray, dev: np.ndarray,
               log_unigram: np.ndarray, k: int | None = None, smoothing: float | None = None
               ) -> tuple[int, float, float]:
    """One-off :meth:`KnnIndex.select`."""
    return KnnIndex(features, counts, train, log_unigram).select(dev, k, smoothing)


# ------------------------------------------------------------------------------------------- what "neighbour" means
def tfidf_features(counts: sp.csr_matrix, train: np.ndarray) -> sp.csr_matrix:
    """Sublinear TF-IDF of each document's own bag of words, IDF from the training split: the lexical teacher.

    No transformer at all: two documents are neighbours when they share rare words. It is the control that every
    claim about what the transformer adds is measured against."""
    from sklearn.feature_extraction.text import TfidfTransformer

    tf = TfidfTransformer(sublinear_tf=True).fit(counts[np.asarray(train)])
    return sp.csr_matrix(tf.transform(counts), dtype=np.float32)


def random_features(n_docs: int, dim: int = 384, seed: int = 0) -> torch.Tensor:
    """Gaussian vectors, one per document: neighbours that know nothing (the null control)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(n_docs, dim, generator=g)


HYBRID_WEIGHTS = (0.25, 0.5, 0.75)  # share of the lexical cosine in a hybrid teacher, chosen on dev perplexity


def candidate_views(kind: str, embeddings: torch.Tensor | None, lexical: sp.csr_matrix | None,
                    hybrid_weight: float | None = None, n_docs: int = 0, seed: int = 0
                    ) -> dict[str, list[tuple[Features, float]]]:
    """The similarity views a teacher ``kind`` chooses among on the dev split, by name.

    ``auto`` offers the lexical, the transformer and the hybrid teachers: the default teacher is whichever predicts
    held-out documents best, so a transformer that adds nothing to word overlap is not used by default."""
    hybrids = (hybrid_weight,) if hybrid_weight is not None else HYBRID_WEIGHTS
    out: dict[str, list[tuple[Features, float]]] = {}
    if kind in ("lexical", "auto"):
        out["lexical"] = [(lexical, 1.0)]
    if kind in ("transformer", "auto"):
        out["transformer"] = [(embeddings, 1.0)]
    if kind in ("hybrid", "auto"):
        for a in hybrids:
            out[f"hybrid a={a:g}"] = [(lexical, a), (embeddings, 1.0 - a)]
    if kind == "random":
        out["random"] = [(random_features(n_docs, seed=seed), 1.0)]
    return out


def choose_index(views: dict[str, list[tuple[Features, float]]], counts: sp.csr_matrix, train: np.ndarray,
                 dev: np.ndarray, log_unigram: np.ndarray, k: int | None = None, smoothing: float | None = None
                 ) -> tuple[str, KnnIndex, tuple[int, float, float], list[dict]]:
    """(name, index, (k, ε, dev perplexity)) of the candidate with the lowest dev perplexity, and every candidate's
    scores (for the summary and the app: what the others scored, and why this one was chosen)."""
    table: list[dict] = []
    best, first = None, None
    for name, v in views.items():
        index = KnnIndex(v, counts, train, log_unigram) if first is None else first.with_features(v)
        first = first or index
        kk, e, ppl = index.select(dev, k, smoothing)
        table.append({"teacher": name, "knn_k": kk, "knn_smoothing": e, "dev_perplexity": ppl})
        if best is None or ppl < best[2][2]:
            best = (name, index, (kk, e, ppl))
    assert best is not None, "no candidate teacher"
    return best[0], best[1], best[2], table
