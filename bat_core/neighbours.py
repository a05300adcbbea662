"""A nonparametric teacher head: a document's predicted bag of words is the word distribution of its nearest
neighbours in the encoder's embedding space.

    p_d = (1 − ε) · mean_{j ∈ kNN(d)} x_j / N_j  +  ε · p_unigram,      z_d = log p_d

Neighbours are *other* training documents (cosine similarity of the frozen encoder's embeddings), so a training
document never sees its own words: the target is out-of-sample by construction, with no folds to train. The transformer
still decides what counts as "a document like this one"; the head only replaces the linear map from embedding to
words with kernel regression over the training documents. See benchmarks/results/tuning.md for why it exists.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

K_GRID = (5, 10, 20, 30, 50, 100)
SMOOTHING_GRID = (0.05, 0.1, 0.2, 0.3, 0.5)


class KnnIndex:
    """Normalised embeddings of the training documents and their word distributions: built once per teacher, then
    asked for logits batch by batch (the export) and for the dev-perplexity grid (the selection)."""

    def __init__(self, features: torch.Tensor, counts: sp.csr_matrix, train: np.ndarray,
                 log_unigram: np.ndarray) -> None:
        self.f = torch.nn.functional.normalize(features.float().cpu(), dim=1)
        self.train = np.asarray(train)
        self.ft = self.f[torch.as_tensor(self.train)]
        lengths = np.asarray(counts[self.train].sum(axis=1)).ravel()
        self.p_train = sp.csr_matrix(sp.diags(1.0 / np.maximum(lengths, 1.0)) @ counts[self.train])
        self.position = np.full(counts.shape[0], -1, dtype=np.int64)
        self.position[self.train] = np.arange(len(self.train))
        self.counts = counts
        self.unigram = np.exp(np.asarray(log_unigram, dtype=np.float64))[None, :]

    def neighbours(self, docs: np.ndarray, k: int, block: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(document block, its k nearest training documents, most similar first), never a document itself."""
        k = max(1, min(k, len(self.train) - 1))
        for s in range(0, len(docs), block):
            d = np.asarray(docs[s: s + block])
            sim = self.f[torch.as_tensor(d)] @ self.ft.T
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
