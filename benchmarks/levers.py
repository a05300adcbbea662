"""Levers that might make the transformer contribute to the nearest-neighbour teacher (tuning.md, session of
2026-12-02). Every lever is scored first by dev perplexity against the lexical, transformer and unigram teachers;
the ones that beat lexical then go to the student comparison (3 seeds, λ = 0.5, paired with lexical and λ = 0).

    python benchmarks/levers.py embed bbcnews            # frozen MiniLM embeddings into the cache (once)
    python benchmarks/levers.py dev demo                 # levers 1, 2, 4: dev-perplexity table
    python benchmarks/levers.py finetune demo --epochs 3 # lever 3: fine-tune top-2 layers, re-embed, knn
    python benchmarks/levers.py students demo --arms lexical,poe   # student comparison for named arms

Caches: BAT_CACHE_DIR (default .bat_cache in the repository); frozen embeddings already computed in another
checkout's cache, named by BAT_SHARED_CACHE, are read from there (read-only) when present. One thread (the machine is
shared).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from bat_core.base.device import amp_dtype, pick_device
from bat_core.base.distributed import current_dist
from bat_core.config import DistillConfig, StudentConfig, TeacherConfig
from bat_core.data.corpus import load_corpus
from bat_core.teachers import build as T
from bat_core.teachers.neighbours import K_GRID, SMOOTHING_GRID, KnnIndex, tfidf_features

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("BAT_CACHE_DIR", ROOT / ".bat_cache"))
SHARED_CACHE = Path(os.environ["BAT_SHARED_CACHE"]) if os.environ.get("BAT_SHARED_CACHE") else None
OUT = ROOT / "benchmarks" / "results" / "levers"
B_GRID = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
TAU_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
WK_GRID = (10, 20, 30, 50, 100, 200)


# ------------------------------------------------------------------------------------------------------- plumbing
class Ctx:
    """A corpus with what every lever needs: counts, splits, unigram, TF-IDF, frozen MiniLM embeddings."""

    def __init__(self, name: str, embed: bool = True) -> None:
        self.name = name
        self.corpus = load_corpus(name)
        self.counts = sp.csr_matrix(self.corpus.counts, dtype=np.float32)
        self.splits = {s: np.asarray(self.corpus.splits[s], dtype=np.int64) for s in ("train", "dev", "test")}
        self.log_p = T.log_unigram(self.corpus.split_counts("train"))
        self.lexical = tfidf_features(self.counts, self.splits["train"])
        self.emb = frozen_embeddings(self.corpus, TeacherConfig(kind="transformer")) if embed else None

    def job(self, cfg: TeacherConfig) -> T._Job:
        return T._Job(cfg, self.counts, pick_device("cpu"), current_dist(), None, None, [])

    def ppl(self, z: np.ndarray | torch.Tensor, docs: np.ndarray) -> float:
        """Per-token perplexity of logits z (rows = docs) on those documents' counts."""
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        x = torch.from_numpy(self.counts[docs].toarray())
        return math.exp(float(T.doc_nll(z, x).sum()) / float(x.sum()))

    def unigram_ppl(self, split: str = "dev") -> float:
        return T.unigram_perplexity(self.corpus.split_counts(split), self.log_p)


def frozen_embeddings(corpus, cfg: TeacherConfig) -> torch.Tensor:
    """The engine's frozen embeddings (same fingerprint): the shared cache if it has them, else ours (computed)."""
    source, local = T.resolve_model(cfg.model)
    fp = {"model": T._model_fingerprint(source, local), "pooling": cfg.pooling, "max_length": cfg.max_length,
          "long_docs": cfg.long_docs, "max_chunks": cfg.max_chunks, "amp": str(amp_dtype(pick_device("cpu"))),
          "format": T.EMBEDDING_FORMAT}
    for cache in (c for c in (SHARED_CACHE, CACHE) if c is not None):
        got = T._load_embeddings(T._embedding_cache_path(cache, corpus, fp), corpus.n_docs)
        if got is not None:
            return got[0]
    job = T._Job(cfg, sp.csr_matrix(corpus.counts, dtype=np.float32), pick_device("cpu"), current_dist(), None,
                 None, [])
    return T._frozen_embeddings(job, corpus, CACHE)[0]


def knn_grid(ctx: Ctx, views, ks=K_GRID, eps=SMOOTHING_GRID) -> tuple[int, float, float, KnnIndex]:
    index = KnnIndex(views, ctx.counts, ctx.splits["train"], ctx.log_p)
    k, e, p = index.select(ctx.splits["dev"], None if len(ks) > 1 else ks[0], None if len(eps) > 1 else eps[0])
    return k, e, p, index


def knn_probs(index: KnnIndex, docs: np.ndarray, k: int) -> np.ndarray:
    """Mean neighbour word distribution (unsmoothed), rows = docs."""
    return np.concatenate([index.mean_distribution(idx) for _, idx in index.neighbours(docs, k)])


def weighted_knn_probs(index: KnnIndex, docs: np.ndarray, k: int, tau: float | None) -> np.ndarray:
    """Neighbour mean weighted by softmax(cosine / τ) over the k nearest (τ = None: uniform = the engine)."""
    out = []
    for s in range(0, len(docs), 256):
        d = docs[s:s + 256]
        sim = index.similarity(d)
        own = index.position[d]
        mine = np.flatnonzero(own >= 0)
        sim[torch.as_tensor(mine), torch.as_tensor(own[mine])] = -float("inf")
        v, i = sim.topk(min(k, len(index.train) - 1), dim=1)
        w = torch.softmax(v / tau, dim=1) if tau else torch.full_like(v, 1.0 / v.shape[1])
        W = sp.csr_matrix((w.numpy().ravel(), i.numpy().ravel(), np.arange(0, i.numel() + 1, i.shape[1])),
                          shape=(len(d), len(index.train)))
        out.append(np.asarray((W @ index.p_train).todense()))
    return np.concatenate(out)


def rerank_probs(ctx: Ctx, docs: np.ndarray, k: int, pool: int, second) -> np.ndarray:
    """Lexical top-``pool`` candidates, re-ranked by a second similarity (MiniLM cosine); mean of the top k."""
    lex = KnnIndex(ctx.lexical, ctx.counts, ctx.splits["train"], ctx.log_p)
    sec = KnnIndex(second, ctx.counts, ctx.splits["train"], ctx.log_p)
    out = []
    for d, idx in lex.neighbours(docs, pool):
        s2 = sec.similarity(d).numpy()
        cand = np.take_along_axis(s2, idx, axis=1)
        order = np.argsort(-cand, axis=1, kind="stable")[:, :k]
        out.append(lex.mean_distribution(np.take_along_axis(idx, order, axis=1)))
    return np.concatenate(out)


def smooth_log(p: np.ndarray, e: float, log_p: np.ndarray) -> np.ndarray:
    return np.log((1 - e) * p + e * np.exp(log_p)[None, :]).astype(np.float32)


def log_softmax(z: np.ndarray) -> np.ndarray:
    return torch.log_softmax(torch.as_tensor(z, dtype=torch.float32), dim=1).numpy()


# ------------------------------------------------------------------------------- cross-fitted heads on embeddings
_HEADS: dict = {}


def cross_fit_head(ctx: Ctx, feats: torch.Tensor, kind: str = "linear", folds: int = 5, seed: int = 42
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """(N×V logits, N×H hidden or None), memoised per process: a train document's from the head of the fold that
    did not see it, dev/test the mean over the folds' heads (as the engine's cross-fitting).
    The engine's head and training loop."""
    memo = (ctx.name, kind, folds, seed, id(feats))
    if memo in _HEADS:
        return _HEADS[memo]
    cfg = TeacherConfig(head=kind, cross_fit_folds=folds, seed=seed)
    job = ctx.job(cfg)
    held = T._folds(ctx.splits["train"], folds, seed)
    feats = feats.float()
    n = ctx.counts.shape[0]
    z = np.zeros((n, ctx.counts.shape[1]), dtype=np.float32)
    hid = np.zeros((n, T.MLP_HIDDEN), dtype=np.float32) if kind == "mlp" else None
    shared = np.setdiff1d(np.arange(n), ctx.splits["train"])
    for f, out in enumerate(held):
        torch.manual_seed(seed + f)
        head = T.BowHead(feats.shape[1], ctx.log_p, kind)
        train = np.setdiff1d(ctx.splits["train"], out)

        def forward(docs, head=head):
            return head(feats[torch.as_tensor(docs)])

        T._train(job, head, forward, [{"params": list(head.parameters()), "lr": cfg.head_lr}], train,
                 ctx.splits["dev"], cfg.head_epochs, None, f, f"head {f}")
        with torch.no_grad():
            for rows, w in ((out, 1.0), (shared, 1.0 / folds)):
                h = feats[torch.as_tensor(rows)]
                z[rows] += w * head(h).numpy()
                if hid is not None:
                    hid[rows] += w * head.net[1](head.net[0](h)).numpy()
    _HEADS[memo] = (z, hid)
    return z, hid


# ------------------------------------------------------------------------------------------------- the dev table
def dev_table(name: str) -> dict:  # noqa: C901 - one table, one lever a row
    ctx = Ctx(name)
    dev = ctx.splits["dev"]
    rows: list[dict] = []
    t0 = time.time()

    def add(lever, teacher, ppl, **kw):
        rows.append({"lever": lever, "teacher": teacher, "dev_ppl": ppl, **kw})
        print(f"  [{time.time() - t0:6.0f}s] {lever:28s} {teacher:48s} {ppl:8.1f} {kw}", flush=True)

    add("ref", "unigram", ctx.unigram_ppl())
    k_lex, e_lex, p_lex, lex = knn_grid(ctx, ctx.lexical)
    add("ref", "lexical knn", p_lex, k=k_lex, eps=e_lex)
    k_tr, e_tr, p_tr, tr = knn_grid(ctx, ctx.emb)
    add("ref", "MiniLM knn", p_tr, k=k_tr, eps=e_tr)

    # lever 1: product of experts with cross-fitted heads ---------------------------------------------------------
    z_lin, _ = cross_fit_head(ctx, ctx.emb, "linear")
    add("ref", "MiniLM linear head, cross-fitted (dev = mean of 5)", ctx.ppl(z_lin[dev], dev))
    z_mlp, h_mlp = cross_fit_head(ctx, ctx.emb, "mlp")
    add("ref", "MiniLM MLP head, cross-fitted", ctx.ppl(z_mlp[dev], dev))
    best_poe = {}
    lex_dev = {k: knn_probs(lex, dev, k) for k in K_GRID}
    tr_dev = {k: knn_probs(tr, dev, k) for k in K_GRID}
    for hname, zh in (("linear", z_lin), ("mlp", z_mlp)):
        lh = log_softmax(zh[dev])
        grid = {(k, e, b): ctx.ppl(smooth_log(lex_dev[k], e, ctx.log_p) + b * lh, dev)
                for k in K_GRID for e in SMOOTHING_GRID for b in B_GRID}
        (k, e, b), p = min(grid.items(), key=lambda kv: kv[1])
        best_poe[hname] = (k, e, b, p)
        add("1 product of experts", f"log p_lex-knn + b·log softmax({hname})", p, k=k, eps=e, b=b)
    # geometric and arithmetic mixtures of the two knn teachers
    lt = smooth_log(tr_dev[k_tr], e_tr, ctx.log_p)
    grid = {(k, e, b): ctx.ppl(smooth_log(lex_dev[k], e, ctx.log_p) + b * lt, dev)
            for k in K_GRID for e in SMOOTHING_GRID for b in B_GRID}
    (k, e, b), p = min(grid.items(), key=lambda kv: kv[1])
    add("1 product of experts", "log p_lex-knn + b·log p_MiniLM-knn", p, k=k, eps=e, b=b)
    grid = {(k1, k2, w, e): ctx.ppl(smooth_log(w * lex_dev[k1] + (1 - w) * tr_dev[k2], e, ctx.log_p), dev)
            for k1 in K_GRID for k2 in K_GRID for w in (0.5, 0.7, 0.8, 0.9) for e in SMOOTHING_GRID}
    (k1, k2, w, e), p = min(grid.items(), key=lambda kv: kv[1])
    add("4 mixture of predictions", "w·p_lex-knn + (1−w)·p_MiniLM-knn", p, k_lex=k1, k_tr=k2, w=w, eps=e)
    grid = {(k, w, e): ctx.ppl(np.log((1 - e) * (w * lex_dev[k] + (1 - w) * torch.softmax(
        torch.as_tensor(z_lin[dev]), 1).numpy()) + e * np.exp(ctx.log_p)[None]), dev)
        for k in K_GRID for w in (0.3, 0.5, 0.7, 0.8, 0.9) for e in SMOOTHING_GRID}
    (k, w, e), p = min(grid.items(), key=lambda kv: kv[1])
    add("4 mixture of predictions", "w·p_lex-knn + (1−w)·softmax(linear)", p, k=k, w=w, eps=e)

    # lever 2: neighbours on the supervised representation -------------------------------------------------------
    reps = {"linear: predicted distribution": torch.softmax(torch.as_tensor(z_lin), 1),
            "linear: sqrt predicted distribution (Hellinger)": torch.softmax(torch.as_tensor(z_lin), 1).sqrt(),
            "linear: logits − log unigram": torch.as_tensor(z_lin - ctx.log_p[None].astype(np.float32)),
            "MLP: predicted distribution": torch.softmax(torch.as_tensor(z_mlp), 1),
            "MLP: hidden layer": torch.as_tensor(h_mlp)}
    best_rep = None
    for rname, r in reps.items():
        k, e, p, _ = knn_grid(ctx, r)
        add("2 supervised representation", f"knn on {rname}", p, k=k, eps=e)
        if best_rep is None or p < best_rep[1]:
            best_rep = (rname, p)
    r = reps[best_rep[0]]
    for a in (0.5, 0.75, 0.9):
        k, e, p, _ = knn_grid(ctx, [(ctx.lexical, a), (r, 1 - a)])
        add("2 supervised representation", f"hybrid a={a} lexical + ({best_rep[0]})", p, k=k, eps=e)
    for a in (0.75, 0.9):
        k, e, p, _ = knn_grid(ctx, [(ctx.lexical, a), (ctx.emb, 1 - a)])
        add("ref", f"hybrid a={a} lexical + MiniLM (engine style)", p, k=k, eps=e)

    # lever 4: weighted means, re-ranking ------------------------------------------------------------------------
    wbest = {}
    for tname, idx in (("lexical", lex), ("MiniLM", tr)):
        grid, probs = {}, {}
        for tau in TAU_GRID:
            for k in WK_GRID:
                pk = weighted_knn_probs(idx, dev, k, tau)
                probs[(k, tau)] = pk
                for e in SMOOTHING_GRID:
                    grid[(k, tau, e)] = ctx.ppl(smooth_log(pk, e, ctx.log_p), dev)
        (k, tau, e), p = min(grid.items(), key=lambda kv: kv[1])
        wbest[tname] = probs[(k, tau)]
        add("4 similarity-weighted mean", f"{tname} knn, weights softmax(cos/τ)", p, k=k, tau=tau, eps=e)
    # the transformer on top of the best lexical teacher (weighted): does it still add?
    lh = log_softmax(z_lin[dev])
    grid = {(e, b): ctx.ppl(smooth_log(wbest["lexical"], e, ctx.log_p) + b * lh, dev)
            for e in SMOOTHING_GRID for b in B_GRID}
    (e, b), p = min(grid.items(), key=lambda kv: kv[1])
    add("1+4 product of experts", "log p_wlex-knn + b·log softmax(linear)", p, eps=e, b=b)
    q_lin = torch.softmax(torch.as_tensor(z_lin[dev]), 1).numpy()
    grid = {(w, e): ctx.ppl(smooth_log(w * wbest["lexical"] + (1 - w) * q_lin, e, ctx.log_p), dev)
            for w in (0.3, 0.5, 0.7, 0.8, 0.9) for e in SMOOTHING_GRID}
    (w, e), p = min(grid.items(), key=lambda kv: kv[1])
    add("1+4 mixture of predictions", "w·p_wlex-knn + (1−w)·softmax(linear)", p, w=w, eps=e)
    grid = {(w, e): ctx.ppl(smooth_log(w * wbest["lexical"] + (1 - w) * wbest["MiniLM"], e, ctx.log_p), dev)
            for w in (0.5, 0.7, 0.8, 0.9) for e in SMOOTHING_GRID}
    (w, e), p = min(grid.items(), key=lambda kv: kv[1])
    add("4 mixture of predictions", "w·p_wlex-knn + (1−w)·p_wMiniLM-knn", p, w=w, eps=e)
    for a in (0.75, 0.9):
        hyb = KnnIndex([(ctx.lexical, a), (ctx.emb, 1 - a)], ctx.counts, ctx.splits["train"], ctx.log_p)
        grid = {}
        for tau in TAU_GRID:
            for k in WK_GRID:
                pk = weighted_knn_probs(hyb, dev, k, tau)
                for e in SMOOTHING_GRID:
                    grid[(k, tau, e)] = ctx.ppl(smooth_log(pk, e, ctx.log_p), dev)
        (k, tau, e), p = min(grid.items(), key=lambda kv: kv[1])
        add("4 similarity-weighted mean", f"hybrid a={a} cosine, weights softmax(cos/τ)", p, k=k, tau=tau, eps=e)
    grid = {}
    for pool in (50, 100):
        for k in (5, 10, 20, 30):
            pk = rerank_probs(ctx, dev, k, pool, ctx.emb)
            for e in SMOOTHING_GRID:
                grid[(pool, k, e)] = ctx.ppl(smooth_log(pk, e, ctx.log_p), dev)
    (pool, k, e), p = min(grid.items(), key=lambda kv: kv[1])
    add("4 re-rank lexical candidates", "lexical top-M re-ranked by MiniLM cosine", p, pool=pool, k=k, eps=e)
    res = {"corpus": name, "n_docs": ctx.corpus.n_docs, "rows": rows}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"dev-{name}.json").write_text(json.dumps(res, indent=1, default=float))
    return res


# ------------------------------------------------------------------------ lever 3: neighbours on a fine-tuned encoder
def finetune(name: str, epochs: int, max_length: int = 128, top_n: int = 2) -> dict:
    """Fine-tune MiniLM's top ``top_n`` layers with a linear head to predict the bag of words (the engine's top-n
    mode: its encoder, head, tokenisation and training loop), then re-embed every document with the fine-tuned
    encoder and run the knn on those embeddings. The same encoder *before* training, at the same max_length, is
    the control (epoch 0). Embeddings are saved under CACHE/levers/ for the student runs."""
    ctx = Ctx(name)
    dev = ctx.splits["dev"]
    n = ctx.corpus.n_docs
    cfg = TeacherConfig(mode="top-n", top_n_layers=top_n, max_length=max_length, epochs=epochs, head="linear",
                        kind="transformer")
    job = ctx.job(cfg)
    t0 = time.time()
    tok, encoder, info = T._load_for_job(job)
    chunks = T._tokenized(job, tok, ctx.corpus.texts, info)
    sizes = np.diff(chunks.start)
    print(f"{name}: {len(chunks.ids)} windows of ≤ {max_length} word-pieces, {chunks.truncated} documents cut",
          flush=True)
    encoder.encoder.eval()
    e0 = T._encode_frozen(job, encoder, chunks, n)
    print(f"  [{time.time() - t0:5.0f}s] frozen re-embed at {max_length} done", flush=True)
    model = T.Teacher(encoder, T.BowHead(encoder.hidden_size, ctx.log_p, "linear"))
    groups = [{"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": cfg.lr},
              {"params": list(model.head.parameters()), "lr": cfg.head_lr}]
    fit = T._train(job, model, lambda docs: model(chunks, docs), groups, ctx.splits["train"], dev, epochs, sizes,
                   0, "fine-tune")
    print(f"  [{time.time() - t0:5.0f}s] fine-tuned: best epoch {fit['best_epoch']}, head dev ppl "
          f"{fit['dev_perplexity']:.1f}; history {[round(h['dev_perplexity'], 1) for h in job.history]}", flush=True)
    model.eval()
    e1 = T._encode_frozen(job, model.encoder, chunks, n)
    with torch.no_grad():
        z_ft = torch.cat([model.head(e1[torch.as_tensor(d)]) for d in np.array_split(np.arange(n), 8)]).numpy()
    print(f"  [{time.time() - t0:5.0f}s] fine-tuned re-embed done", flush=True)
    folder = CACHE / "levers"
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{name}-top{top_n}-L{max_length}-e{epochs}"
    torch.save({"frozen": e0, "finetuned": e1, "head_logits": torch.from_numpy(z_ft), "history": job.history},
               folder / f"{tag}.pt")
    rows = [{"teacher": "unigram", "dev_ppl": ctx.unigram_ppl()}]
    for tname, v in (("lexical knn", ctx.lexical), ("MiniLM knn (frozen, 256×4)", ctx.emb),
                     (f"MiniLM knn (frozen, {max_length}×4)", e0), (f"fine-tuned knn ({tag})", e1),
                     ("hybrid a=0.5 lexical + fine-tuned", [(ctx.lexical, 0.5), (e1, 0.5)]),
                     ("hybrid a=0.75 lexical + fine-tuned", [(ctx.lexical, 0.75), (e1, 0.25)])):
        k, e, p, _ = knn_grid(ctx, v)
        rows.append({"teacher": tname, "dev_ppl": p, "k": k, "eps": e})
    rows.append({"teacher": "fine-tuned linear head (in-sample on train)", "dev_ppl": ctx.ppl(z_ft[dev], dev),
                 "train_ppl": ctx.ppl(z_ft[ctx.splits['train']], ctx.splits["train"])})
    lex = KnnIndex(ctx.lexical, ctx.counts, ctx.splits["train"], ctx.log_p)
    lex_dev = {k: knn_probs(lex, dev, k) for k in K_GRID}
    lh = log_softmax(z_ft[dev])
    grid = {(k, e, b): ctx.ppl(smooth_log(lex_dev[k], e, ctx.log_p) + b * lh, dev)
            for k in K_GRID for e in SMOOTHING_GRID for b in B_GRID}
    (k, e, b), p = min(grid.items(), key=lambda kv: kv[1])
    rows.append({"teacher": "log p_lex-knn + b·log softmax(fine-tuned head)", "dev_ppl": p, "k": k, "eps": e, "b": b})
    for r in rows:
        print("  ", r, flush=True)
    res = {"corpus": name, "tag": tag, "wall_s": time.time() - t0, "best_epoch": fit["best_epoch"],
           "history": job.history, "rows": rows}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"finetune-{tag}.json").write_text(json.dumps(res, indent=1, default=float))
    return res


# ------------------------------------------------------------------------------------------- student comparison
def arm_logits(ctx: Ctx, arm: str):
    """A teacher for the student runs, with the hyperparameters chosen on dev (dev-*.json / finetune-*.json)."""
    from bat_core.teachers.build import build_teacher
    from bat_core.teachers.store import TeacherLogits

    if arm in ("lexical", "transformer"):
        return build_teacher(ctx.corpus, TeacherConfig(kind=arm), cache_dir=CACHE)
    n = np.arange(ctx.corpus.n_docs)
    dev = json.loads((OUT / f"dev-{ctx.name}.json").read_text())["rows"]
    pick = {r["teacher"]: r for r in dev}
    if arm in ("poe-linear", "poe-mlp"):
        r = pick[f"log p_lex-knn + b·log softmax({arm[4:]})"]
        z_h, _ = cross_fit_head(ctx, ctx.emb, arm[4:])
        lex = KnnIndex(ctx.lexical, ctx.counts, ctx.splits["train"], ctx.log_p)
        z = smooth_log(knn_probs(lex, n, r["k"]), r["eps"], ctx.log_p) + r["b"] * log_softmax(z_h)
    elif arm == "poe-knn":
        r = pick["log p_lex-knn + b·log p_MiniLM-knn"]
        ref = {x["teacher"]: x for x in dev if x["lever"] == "ref"}["MiniLM knn"]
        lex = KnnIndex(ctx.lexical, ctx.counts, ctx.splits["train"], ctx.log_p)
        tr = KnnIndex(ctx.emb, ctx.counts, ctx.splits["train"], ctx.log_p)
        z = (smooth_log(knn_probs(lex, n, r["k"]), r["eps"], ctx.log_p)
             + r["b"] * smooth_log(knn_probs(tr, n, ref["k"]), ref["eps"], ctx.log_p))
    elif arm == "mix-knn":
        r = pick["w·p_lex-knn + (1−w)·p_MiniLM-knn"]
        lex = KnnIndex(ctx.lexical, ctx.counts, ctx.splits["train"], ctx.log_p)
        tr = KnnIndex(ctx.emb, ctx.counts, ctx.splits["train"], ctx.log_p)
        z = smooth_log(r["w"] * knn_probs(lex, n, r["k_lex"]) + (1 - r["w"]) * knn_probs(tr, n, r["k_tr"]),
                       r["eps"], ctx.log_p)
    elif arm in ("mix-linear", "mix-wlex-linear", "poe-wlex-linear"):
        z_h, _ = cross_fit_head(ctx, ctx.emb, "linear")
        q = torch.softmax(torch.as_tensor(z_h), 1).numpy()
        if arm == "mix-linear":
            r = pick["w·p_lex-knn + (1−w)·softmax(linear)"]
            lex = KnnIndex(ctx.lexical, ctx.counts, ctx.splits["train"], ctx.log_p)
            p_lex = knn_probs(lex, n, r["k"])
        else:
            w = pick["lexical knn, weights softmax(cos/τ)"]
            lex = KnnIndex(ctx.lexical, ctx.counts, ctx.splits["train"], ctx.log_p)
            p_lex = weighted_knn_probs(lex, n, w["k"], w["tau"])
            r = pick["w·p_wlex-knn + (1−w)·softmax(linear)" if arm == "mix-wlex-linear"
                     else "log p_wlex-knn + b·log softmax(linear)"]
        if arm.startswith("mix"):
            z = smooth_log(r["w"] * p_lex + (1 - r["w"]) * q, r["eps"], ctx.log_p)
        else:
            z = smooth_log(p_lex, r["eps"], ctx.log_p) + r["b"] * np.log(q)
    elif arm == "weighted-lexical":
        r = pick["lexical knn, weights softmax(cos/τ)"]
        lex = KnnIndex(ctx.lexical, ctx.counts, ctx.splits["train"], ctx.log_p)
        z = smooth_log(weighted_knn_probs(lex, n, r["k"], r["tau"]), r["eps"], ctx.log_p)
    elif arm.startswith("ft:"):  # ft:<tag>:<row name in the finetune json>
        _, tag, row = arm.split(":", 2)
        res = {r["teacher"]: r for r in json.loads((OUT / f"finetune-{tag}.json").read_text())["rows"]}[row]
        e1 = torch.load(CACHE / "levers" / f"{tag}.pt")["finetuned"]
        views = {"fine-tuned": e1, "hybrid0.5": [(ctx.lexical, 0.5), (e1, 0.5)],
                 "hybrid0.75": [(ctx.lexical, 0.75), (e1, 0.25)]}[row.split()[0]]
        z = KnnIndex(views, ctx.counts, ctx.splits["train"], ctx.log_p).logits(n, res["k"], res["eps"]).numpy()
    else:
        raise SystemExit(f"unknown arm {arm}")
    return TeacherLogits.from_dense(z, meta={"key": f"levers-{ctx.name}-{arm}", "arm": arm})


def students(name: str, arms: list[str], n_seeds: int) -> None:
    from bat_core.grid import seed_list
    from bat_core.training.trainer import fit_student

    ctx = Ctx(name, embed=any(a not in ("lexical",) for a in arms))
    path = OUT / f"students-{name}.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    teachers: dict = {}
    t0 = time.time()
    for s in seed_list(n_seeds):
        for arm in ["baseline", *arms]:
            key = f"{arm}|{s}"
            if key in done:
                continue
            if arm != "baseline" and arm not in teachers:
                teachers[arm] = arm_logits(ctx, arm)
                dev_ppl = ctx.ppl(teachers[arm].dense(ctx.splits["dev"]), ctx.splits["dev"])
                print(f"  teacher {arm}: dev ppl {dev_ppl:.1f}", flush=True)
            run = fit_student(ctx.corpus, StudentConfig(seed=s), DistillConfig(lam=0.0 if arm == "baseline" else 0.5),
                              None if arm == "baseline" else teachers[arm])
            done[key] = {"test_npmi": run.metrics["test_npmi"], "tu": run.metrics["tu"],
                         "dev_npmi": run.metrics["dev_npmi"], "best_epoch": run.metrics["best_epoch"]}
            path.write_text(json.dumps(done, indent=1))
            print(f"  [{time.time() - t0:5.0f}s] {key}: {done[key]}", flush=True)
    print(student_table(name))


def student_table(name: str) -> str:
    done = json.loads((OUT / f"students-{name}.json").read_text())
    seeds = sorted({int(k.split("|")[1]) for k in done})
    arms = list(dict.fromkeys(k.split("|")[0] for k in done))
    lines = [f"| arm ({name}) | test NPMI | Δ vs λ=0 | won vs λ=0 | Δ vs lexical | won vs lexical | TU |",
             "|---|---|---|---|---|---|---|"]
    for arm in arms:
        ss = [s for s in seeds if f"{arm}|{s}" in done]
        v = np.array([done[f"{arm}|{s}"]["test_npmi"] for s in ss])
        tu = np.mean([done[f"{arm}|{s}"]["tu"] for s in ss])
        cells = []
        for ref in ("baseline", "lexical"):
            pair = [s for s in ss if f"{ref}|{s}" in done]
            if arm == ref or not pair:
                cells += ["–", "–"]
                continue
            d = np.array([done[f"{arm}|{s}"]["test_npmi"] - done[f"{ref}|{s}"]["test_npmi"] for s in pair])
            base = np.mean([done[f"{ref}|{s}"]["test_npmi"] for s in pair])
            cells += [f"{d.mean():+.4f} ± {d.std(ddof=1) if len(d) > 1 else 0:.4f} ({100 * d.mean() / base:+.1f}%)",
                      f"{int((d > 0).sum())}/{len(d)}"]
        lines.append(f"| {arm} | {v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f} | {cells[0]} | "
                     f"{cells[1]} | {cells[2]} | {cells[3]} | {tu:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["embed", "dev", "finetune", "students"])
    ap.add_argument("corpus")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--arms", default="lexical")
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)  # one thread: the machine is shared
    if a.what == "embed":
        c = Ctx(a.corpus)
        print(c.name, c.corpus.n_docs, tuple(c.emb.shape))
    elif a.what == "dev":
        dev_table(a.corpus)
    elif a.what == "finetune":
        finetune(a.corpus, a.epochs)
    elif a.what == "students":
        students(a.corpus, [x for x in a.arms.split(",") if x], a.seeds)


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
