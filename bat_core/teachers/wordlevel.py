"""Word-level knowledge for the teacher: each document's words spread onto related vocabulary words, mixed with the
lexical neighbours' prediction (issue #25, item 4).

Why: on short texts (news leads, titles, posts of a dozen vocabulary words) a document says too little for its
neighbours to be found well, and the lever the short-text topic-model literature pulls is word-level knowledge from
outside the corpus: pretrained word vectors that say "election" is related to "vote" when no document has both
(GPU-DMM, Li et al. 2016; LF-DMM, Nguyen et al. 2015; the embedding-based short-text models after them). Here that
knowledge enters the distillation target, not the student:

    W[a, b] ∝ s(a, b)   for the word_k words b ≠ a with the largest s(a, b) > 0 among those that pass the gate
    gate(a, b):  PMI(a, b) > 0 on the training split's document co-occurrence (never co-occurring pairs are dropped)
    spread_d  = x_d · W / Σ (x_d · W)                     rows of W sum to 1; scipy.sparse throughout
    p_d       = (1 − w) · p_neighbours(d) + w · spread_d    z_d = log p_d   (w = ``word_weight``)

p_neighbours is the lexical teacher's distribution exactly as the ``lexical`` kind builds it (k and ε chosen on the dev
split, a training document never its own neighbour); a document none of whose words has a related word keeps it
alone. Three kinds, so that a benchmark can pair them by seed:

* ``wordvec``: s = cosine of MiniLM's *input* word vectors (``embeddings.word_embeddings``; a vocabulary word's
  vector is the mean of its word-pieces'; no forward pass, so a second on a CPU);
* ``cooc``: s = the pair's NPMI itself: the same spread and mix without any outside knowledge (the control for
  "the vectors add something over the corpus's own co-occurrence");
* ``wordvec-shuffled``: the vectors permuted over the vocabulary (a fixed seed) under the same gate (the placebo for
  "it is the vectors' knowledge, not merely spreading to some co-occurring words").

The gate comes from the training documents, so a training document's own co-occurrence could let its words spread
onto its other words: the same leak the neighbours avoid by never being their own neighbour. A training document's
spread therefore drops every pair of its own words that passes the gate only because of that document (the gate
recomputed without it), and renormalises what is left of each row (no other word takes the dropped one's place).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..config import WORD_KINDS

BLOCK_WORDS = 512  # vocabulary rows per block when the co-occurrence is built (a block's similarities stay small)
SPREAD_BLOCK = 2048  # documents per block when spreads are computed


def word_vectors(model: str, vocab: list[str]) -> np.ndarray:
    """V × H: each vocabulary word's vector, the mean of its word-pieces' input embeddings in ``model``
    (``get_input_embeddings``; the encoder is loaded, never run). Kept per process for the last few vocabularies:
    wordvec and its placebo read the same vectors."""
    return _word_vectors(model, tuple(vocab)).copy()


@functools.lru_cache(maxsize=4)
def _word_vectors(model: str, vocab: tuple[str, ...]) -> np.ndarray:
    from .encoder import _quiet_transformers, load_encoder

    tok, hf_model, _ = load_encoder(model)
    table = hf_model.get_input_embeddings().weight.detach().float().cpu().numpy()
    with _quiet_transformers():
        pieces = tok(list(vocab), add_special_tokens=False)["input_ids"]
    out = np.zeros((len(vocab), table.shape[1]), dtype=np.float32)
    for i, ids in enumerate(pieces):
        if ids:
            out[i] = table[ids].mean(axis=0)
    return out


def shuffled(vectors: np.ndarray, seed: int) -> np.ndarray:
    """The same vectors, given to other words: a fixed permutation over the vocabulary (the placebo)."""
    return vectors[np.random.default_rng(seed).permutation(len(vectors))]


@dataclass
class WordSpread:
    """W (V × V, rows sum to 1 or are empty) and what the leave-one-out gate of a training document needs: each
    kept pair's co-occurrence count (aligned with ``matrix.data``), every word's document frequency and the number
    of training documents."""

    matrix: sp.csr_matrix
    pair_docs: np.ndarray  # documents of the training split holding both words of each kept pair
    df: np.ndarray
    n_docs: int
    gated_pairs: int  # ordered pairs (a ≠ b) that pass the gate, before the top-k

    def stats(self) -> dict:
        rows = np.diff(self.matrix.indptr)
        return {"word_pairs_gated": int(self.gated_pairs), "word_pairs_kept": int(self.matrix.nnz),
                "words_with_related": int((rows > 0).sum())}


def npmi(pairs: np.ndarray, df_a: np.ndarray, df_b: np.ndarray, n_docs: int) -> np.ndarray:
    """NPMI of word pairs from their document counts: log(c·N / (df_a·df_b)) / −log(c / N), 1 when c = N."""
    c = pairs.astype(np.float64)
    pmi = np.log(c * n_docs) - np.log(df_a.astype(np.float64) * df_b)
    denom = -np.log(c / n_docs)
    return np.where(denom > 0, pmi / np.where(denom > 0, denom, 1.0), 1.0)


def build_spread(train_counts: sp.spmatrix, k: int, vectors: np.ndarray | None = None) -> WordSpread:
    """W from the training documents' counts: among the pairs with positive PMI (the gate), each word's ``k`` most
    similar words by the cosine of ``vectors``, or by NPMI when ``vectors`` is None (the co-occurrence control);
    weights are those similarities (> 0 only), each row normalised."""
    b = sp.csr_matrix(train_counts, dtype=np.float32)
    b.data[:] = 1.0
    b.eliminate_zeros()
    n, v = b.shape
    df = np.asarray(b.sum(axis=0)).ravel().astype(np.int64)
    bt = sp.csr_matrix(b.T)
    unit = None
    if vectors is not None:
        norm = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = (vectors / np.where(norm > 0, norm, 1.0)).astype(np.float32)
    rows, cols, weights, counts = [], [], [], []
    gated = 0
    for s in range(0, v, BLOCK_WORDS):
        block = sp.coo_matrix(bt[s: s + BLOCK_WORDS] @ b)  # words × words: documents holding both
        a, c, pair = block.row + s, block.col, np.rint(block.data).astype(np.int64)
        keep = (a != c) & (pair * n > df[a] * df[c])  # the gate: PMI > 0 (pairs never together are absent)
        a, c, pair = a[keep], c[keep], pair[keep]
        gated += len(a)
        if unit is not None:
            sim = unit[s: s + BLOCK_WORDS] @ unit.T
            score = sim[a - s, c].astype(np.float64)
        else:
            score = npmi(pair, df[a], df[c], n)
        keep = score > 0
        a, c, pair, score = a[keep], c[keep], pair[keep], score[keep]
        order = np.lexsort((c, -score, a))  # by word, best first, ties by word id
        a, c, pair, score = a[order], c[order], pair[order], score[order]
        first = np.searchsorted(a, a, side="left")
        top = np.arange(len(a)) - first < k
        rows.append(a[top])
        cols.append(c[top])
        weights.append(score[top])
        counts.append(pair[top])
    a, c = np.concatenate(rows), np.concatenate(cols)
    w, pair = np.concatenate(weights), np.concatenate(counts)
    sums = np.bincount(a, weights=w, minlength=v)
    w = w / sums[a]
    order = np.lexsort((c, a))
    a, c, w, pair = a[order], c[order], w[order], pair[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(a, minlength=v))])
    matrix = sp.csr_matrix((w.astype(np.float64), c.astype(np.int64), indptr), shape=(v, v))
    return WordSpread(matrix, pair, df, n, gated)


def spreads(ws: WordSpread, counts: sp.csr_matrix, docs: np.ndarray, in_train: np.ndarray) -> sp.csr_matrix:
    """len(docs) × V: each document's words spread by W, rows summing to 1 (or empty: no word has a related one).

    ``in_train[i]``: document ``docs[i]`` is a training document, so pairs of its own words that pass the gate only
    thanks to it are dropped from its spread (their gate recomputed without it), and each row renormalised."""
    docs = np.asarray(docs, dtype=np.int64)
    v = counts.shape[1]
    w = ws.matrix
    out = []
    for s in range(0, len(docs), SPREAD_BLOCK):
        d = docs[s: s + SPREAD_BLOCK]
        x = sp.csr_matrix(counts[d])
        x.sort_indices()
        x_row = np.repeat(np.arange(len(d)), np.diff(x.indptr))
        x_word, x_val = x.indices.astype(np.int64), x.data.astype(np.float64)
        # every (document, own word a, related word b) entry of x · W
        per = np.diff(w.indptr)[x_word]
        entry = np.repeat(np.arange(len(x_word)), per)
        pos = np.arange(len(entry)) - np.repeat(np.cumsum(per) - per, per) + np.repeat(w.indptr[x_word], per)
        a, b, weight = x_word[entry], w.indices[pos].astype(np.int64), w.data[pos].copy()
        row = x_row[entry]
        train = np.asarray(in_train[s: s + SPREAD_BLOCK], dtype=bool)[row]
        if train.any():
            # b is in the document too: the gate again with the pair's count, both frequencies and N without it
            keys = x_row * v + x_word  # sorted: rows in order, columns sorted within a row
            want = row * v + b
            own = train & (keys[np.minimum(np.searchsorted(keys, want), len(keys) - 1)] == want)
            c = ws.pair_docs[pos] - 1
            leaks = own & ((c <= 0) | (c * (ws.n_docs - 1) <= (ws.df[a] - 1) * (ws.df[b] - 1)))
            weight[leaks] = 0.0
            kept = np.bincount(entry, weights=weight, minlength=len(x_word))
            weight = np.where(kept[entry] > 0, weight / np.where(kept[entry] > 0, kept[entry], 1.0), 0.0)
        block = sp.csr_matrix((weight * x_val[entry], (row, b)), shape=(len(d), v))
        total = np.asarray(block.sum(axis=1)).ravel()
        out.append(sp.csr_matrix(sp.diags(np.where(total > 0, 1.0 / np.where(total > 0, total, 1.0), 0.0)) @ block))
    return sp.csr_matrix(sp.vstack(out)) if out else sp.csr_matrix((0, v))


def mix(neighbour_logits: np.ndarray, spread: sp.csr_matrix, weight: float) -> np.ndarray:
    """log((1 − w) · softmax(neighbour logits) + w · spread) per row; a row without spread keeps the neighbours'
    distribution alone."""
    z = np.asarray(neighbour_logits, dtype=np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    has = np.asarray(spread.sum(axis=1)).ravel() > 0
    out = p.copy()
    out[has] = (1 - weight) * p[has] + weight * spread[np.flatnonzero(has)].toarray()
    return np.log(out).astype(np.float32)


def spread_for_kind(kind: str, train_counts: sp.spmatrix, vocab: list[str], k: int, model: str,
                    seed: int) -> WordSpread:
    """W of a word-level teacher kind (:data:`~bat_core.config.WORD_KINDS`)."""
    if kind not in WORD_KINDS:
        raise ValueError(f"not a word-level teacher kind: {kind!r}")
    if kind == "cooc":
        return build_spread(train_counts, k)
    vectors = word_vectors(model, vocab)
    return build_spread(train_counts, k, shuffled(vectors, seed) if kind == "wordvec-shuffled" else vectors)
