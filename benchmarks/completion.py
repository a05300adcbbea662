"""Document completion: which neighbours ``auto`` would choose if a teacher could not win by matching the very words
it is scored on (issue #25, item 3).

``auto`` chooses among neighbours by shared words (TF-IDF), by MiniLM embeddings and mixes of the two by dev
perplexity: each dev document's neighbours are found from its words and scored on the same words, which on short
texts favours the shared-word neighbours by construction (docs/results.md, section 3). Completion splits each dev
document's text in two halves (alternate words), finds the neighbours from the first half (its TF-IDF, its MiniLM
embedding, or both) and scores the perplexity of the neighbours' smoothed word distribution on the second half's
words; k and ε are chosen on that perplexity over the same grids as the teacher's. Both criteria are printed for
every candidate, with what each would choose. Measurement only: ``auto`` still uses dev perplexity.

    python benchmarks/completion.py nytsnippets questions /tmp/scr/bbc_titles.txt demo bbcnews

Embeddings: every document's first window (what ``auto`` screens on); the half texts are encoded the same way.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import scipy.sparse as sp
import torch

from bat_core.base.device import amp_dtype, pick_device
from bat_core.config import TeacherConfig
from bat_core.data.corpus import load_corpus, vectorize
from bat_core.teachers.encoder import DocEncoder, combine_chunks, load_encoder, tokenize
from bat_core.teachers.head import log_unigram
from bat_core.teachers.neighbours import HYBRID_WEIGHTS, K_GRID, SMOOTHING_GRID


def halves(texts: list[str]) -> tuple[list[str], list[str]]:
    """Each text's words at even and at odd positions: two halves of one document, in its own order."""
    words = [t.split() for t in texts]
    return [" ".join(w[0::2]) for w in words], [" ".join(w[1::2]) for w in words]


def embed(texts: list[str], cfg: TeacherConfig) -> torch.Tensor:
    """MiniLM embeddings of the texts' first windows (mean pooled, normalised), as ``auto``'s screen makes them."""
    tok, model, _ = load_encoder(cfg.model, cfg.seed)
    enc = DocEncoder(model.eval(), cfg.pooling, int(tok.pad_token_id), amp_dtype(pick_device("cpu")))
    chunks = tokenize(tok, texts, cfg.max_length, cfg.long_docs, 1)
    order = np.argsort([len(c) for c in chunks.ids], kind="stable")
    h = np.zeros((len(chunks.ids), enc.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for b in range(0, len(order), cfg.encode_batch_size):
            idx = order[b: b + cfg.encode_batch_size]
            h[idx] = enc.embed_chunks([chunks.ids[i] for i in idx]).float().numpy()
    out = combine_chunks(torch.from_numpy(h), chunks.doc, chunks.weight, np.arange(len(texts)))
    return torch.nn.functional.normalize(out.float(), dim=1)


def cosine(q: sp.csr_matrix, t: sp.csr_matrix) -> torch.Tensor:
    """Cosine of TF-IDF rows (already l2-normalised by the transformer)."""
    return torch.from_numpy((q @ t.T).toarray().astype(np.float32))


def best_perplexity(sim: torch.Tensor, p_train: sp.csr_matrix, target: sp.csr_matrix, unigram: np.ndarray
                    ) -> tuple[float, int, float]:
    """(per-token perplexity, k, ε) of the best k and ε: each query's k most similar training documents' mean word
    distribution, mixed with ε of the unigram, scored on ``target``'s counts."""
    k_max = min(max(K_GRID), sim.shape[1])
    idx = sim.topk(k_max, dim=1).indices.numpy()
    x = target.tocoo()
    best = (math.inf, 0, 0.0)
    for k in K_GRID:
        kk = min(k, k_max)
        w = sp.csr_matrix((np.full(idx.shape[0] * kk, 1.0 / kk), idx[:, :kk].ravel(),
                           np.arange(0, idx.shape[0] * kk + 1, kk)), shape=(idx.shape[0], p_train.shape[0]))
        p = np.asarray((w @ p_train)[x.row, x.col]).ravel()
        for e in SMOOTHING_GRID:
            nll = -float((x.data * np.log((1 - e) * p + e * unigram[x.col])).sum())
            best = min(best, (math.exp(nll / float(x.data.sum())), kk, e))
    return best


def table(source: str, cfg: TeacherConfig) -> list[dict]:
    """Per candidate: dev perplexity (today's criterion: neighbours from the whole dev document, scored on it) and
    completion perplexity (neighbours from one half, scored on the other)."""
    from sklearn.feature_extraction.text import TfidfTransformer

    corpus = load_corpus(source)
    train, dev = corpus.splits["train"], corpus.splits["dev"]
    counts = sp.csr_matrix(corpus.counts, dtype=np.float32)
    a_text, b_text = halves(corpus.split_texts("dev"))
    a, b = (vectorize(t, corpus.config, corpus.vocab) for t in (a_text, b_text))
    keep = np.flatnonzero((np.asarray(a.sum(axis=1)).ravel() > 0) & (np.asarray(b.sum(axis=1)).ravel() > 0))
    tf = TfidfTransformer(sublinear_tf=True).fit(counts[train])
    lex_t, lex_dev, lex_a = tf.transform(counts[train]), tf.transform(counts[dev]), tf.transform(a[keep])
    emb = embed([corpus.texts[i] for i in train] + corpus.split_texts("dev") + [a_text[i] for i in keep], cfg)
    emb_t, emb_dev, emb_a = emb[:len(train)], emb[len(train):len(train) + len(dev)], emb[len(train) + len(dev):]
    lengths = np.maximum(np.asarray(counts[train].sum(axis=1)).ravel(), 1.0)
    p_train = sp.csr_matrix(sp.diags(1.0 / lengths) @ counts[train])
    unigram = np.exp(log_unigram(corpus.split_counts("train")))
    views = {"lexical": 1.0, "transformer": 0.0, **{f"hybrid a={w:g}": w for w in HYBRID_WEIGHTS}}
    rows = []
    for name, w in views.items():
        sim_dev = w * cosine(lex_dev, lex_t) + (1 - w) * (emb_dev @ emb_t.T)
        sim_a = w * cosine(lex_a, lex_t) + (1 - w) * (emb_a @ emb_t.T)
        dev_ppl, dk, de = best_perplexity(sim_dev, p_train, counts[dev], unigram)
        comp_ppl, ck, ce = best_perplexity(sim_a, p_train, b[keep], unigram)
        rows.append({"corpus": corpus.name, "teacher": name, "dev_perplexity": dev_ppl, "dev_k": dk, "dev_eps": de,
                     "completion_perplexity": comp_ppl, "completion_k": ck, "completion_eps": ce,
                     "dev_docs": len(dev), "completion_docs": len(keep),
                     "median_tokens": float(np.median(np.asarray(counts[train].sum(axis=1)).ravel()))})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpora", nargs="+", help="installed corpus names or files")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    print("| corpus (median words) | candidate | dev perplexity (k, ε) | completion perplexity (k, ε) |")
    print("|---|---|---|---|")
    for source in args.corpora:
        rows = table(source, TeacherConfig())
        by_dev = min(rows, key=lambda r: r["dev_perplexity"])["teacher"]
        by_comp = min(rows, key=lambda r: r["completion_perplexity"])["teacher"]
        for r in rows:
            mark = ("dev" if r["teacher"] == by_dev else "") + (" completion" if r["teacher"] == by_comp else "")
            print(f"| {r['corpus']} ({r['median_tokens']:.0f}; {r['completion_docs']} of {r['dev_docs']} dev docs "
                  f"split) | {r['teacher']} | {r['dev_perplexity']:,.0f} ({r['dev_k']}, {r['dev_eps']:g}) | "
                  f"{r['completion_perplexity']:,.0f} ({r['completion_k']}, {r['completion_eps']:g}) |"
                  + (f" ← {mark.strip()}" if mark else ""), flush=True)
    return 0


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
