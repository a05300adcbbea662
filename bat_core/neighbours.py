"""A nonparametric teacher head: a document's predicted bag of words is the word distribution of its nearest
neighbours in the encoder's embedding space.

    p_d = (1 − ε) · mean_{j ∈ kNN(d)} x_j / N_j  +  ε · p_unigram,      z_d = log p_d

Neighbours are *other* training documents (cosine similarity of the frozen encoder's embeddings), so a training
document never sees its own words: the target is out-of-sample by construction, with no folds to train. The transformer
still decides what counts as "a document like this one"; the head only replaces the linear map from embedding to
words with kernel regression over the training documents. See benchmarks/results/tuning.md for why it exists.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
import torch


def knn_logits(features: torch.Tensor, counts: sp.csr_matrix, train: np.ndarray, docs: np.ndarray, k: int,
               smoothing: float, log_unigram: np.ndarray, block: int = 1024) -> torch.Tensor:
    """Log of the smoothed mean word distribution of each document's ``k`` nearest training documents (itself
    excluded). ``features`` are N×H embeddings of every document; returns len(docs)×V float32 logits (CPU)."""
    f = torch.nn.functional.normalize(features.float().cpu(), dim=1)
    train = np.asarray(train)
    ft = f[torch.as_tensor(train)]
    lengths = np.asarray(counts[train].sum(axis=1)).ravel()
    p_train = sp.diags(1.0 / np.maximum(lengths, 1.0)) @ counts[train]  # rows: each training doc's word distribution
    position = np.full(counts.shape[0], -1, dtype=np.int64)
    position[train] = np.arange(len(train))
    k = max(1, min(k, len(train) - 1))
    uni = np.exp(np.asarray(log_unigram, dtype=np.float64))
    out = []
    for s in range(0, len(docs), block):
        d = np.asarray(docs[s: s + block])
        sim = f[torch.as_tensor(d)] @ ft.T
        own = position[d]
        mine = np.flatnonzero(own >= 0)
        sim[torch.as_tensor(mine), torch.as_tensor(own[mine])] = -float("inf")  # never your own neighbour
        idx = sim.topk(k, dim=1).indices.numpy()
        weights = sp.csr_matrix((np.full(idx.size, 1.0 / k), idx.ravel(), np.arange(0, idx.size + 1, k)),
                                shape=(len(d), len(train)))
        p = np.asarray((weights @ p_train).todense())
        out.append(np.log((1 - smoothing) * p + smoothing * uni[None, :]).astype(np.float32))
    return torch.from_numpy(np.concatenate(out)) if out else torch.zeros(0, counts.shape[1])


K_GRID = (5, 10, 20, 30, 50, 100)
SMOOTHING_GRID = (0.05, 0.1, 0.2, 0.3, 0.5)


def select_knn(features: torch.Tensor, counts: sp.csr_matrix, train: np.ndarray, dev: np.ndarray,
               log_unigram: np.ndarray, k: int | None = None, smoothing: float | None = None
               ) -> tuple[int, float, float]:
    """(k, ε, dev perplexity) with the lowest per-token perplexity on the dev split, over the grid for whichever of
    ``k`` / ``smoothing`` is None. This is how the paper picks its teacher (dev perplexity), and it adapts the head
    to the corpus: many short, loosely related documents want more neighbours and more smoothing, measured on
    mini20ng (best k = 30, ε = 0.3), where the NewsArticles-sized setting (k = 10, ε = 0.05) predicted held-out
    documents worse than word frequencies alone."""
    x = counts[dev]
    total = max(float(x.sum()), 1e-12)
    coo = x.tocoo()
    best = (0, 0.0, float("inf"))
    for kk, eps in itertools.product((k,) if k else K_GRID, (smoothing,) if smoothing else SMOOTHING_GRID):
        z = knn_logits(features, counts, train, dev, kk, eps, log_unigram).numpy()
        ppl = float(np.exp(-(coo.data * z[coo.row, coo.col]).sum() / total))
        if ppl < best[2]:
            best = (kk, eps, ppl)
    return best
