"""Encoder levers for the transformer's neighbours (issue #9, "pooling, chunk length and count, a larger encoder"):
for each encoder setting, the dev perplexity of the knn teacher on its frozen embeddings, alone and mixed with the
lexical cosine, against the lexical teacher and the unigram model. Also post-processing of the embeddings before
the cosine, which sentence-embedding spaces are known to need (a shared mean direction makes every document look
alike): centering, removing the top principal directions ("all-but-the-top"), PCA whitening; all fitted on the
training split only.

    python benchmarks/encoders.py demo                                  # every setting below, MiniLM
    python benchmarks/encoders.py bbcnews --settings "minilm;minilm pooling=cls"
    python benchmarks/encoders.py demo --settings "/path/to/all-mpnet-base-v2" --tag mpnet   # a larger encoder

A setting is ``<model> [field=value …]`` with TeacherConfig fields (pooling, max_length, max_chunks). k and ε are
chosen on dev for every row, as the engine does. Embeddings are cached like the engine's (BAT_CACHE_DIR). Writes
benchmarks/results/levers/encoders-<corpus>.json and prints a markdown table; results are in tuning.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from bat_core.base.device import pick_device
from bat_core.base.distributed import current_dist
from bat_core.config import TeacherConfig
from bat_core.data.corpus import load_corpus
from bat_core.teachers import build as T
from bat_core.teachers.neighbours import KnnIndex, tfidf_features

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("BAT_CACHE_DIR", ROOT / ".bat_cache"))
OUT = ROOT / "benchmarks" / "results" / "levers"
DEFAULT_SETTINGS = ("minilm", "minilm pooling=cls", "minilm max_length=128 max_chunks=8",
                    "minilm max_length=512 max_chunks=2")
MIXES = (0.0, 0.5, 0.75)  # share of the lexical cosine (0 = the transformer alone)


def parse_setting(text: str) -> TeacherConfig:
    model, *fields = text.split()
    kw = {k: (v if k == "pooling" else int(v)) for k, v in (f.split("=", 1) for f in fields)}
    return TeacherConfig(model=model, kind="transformer", **kw)


def embeddings(corpus, cfg: TeacherConfig) -> tuple[torch.Tensor, dict, float]:
    """The engine's frozen embeddings for these settings (cached under CACHE like the engine's), and the wall time."""
    job = T._Job(cfg, sp.csr_matrix(corpus.counts, dtype=np.float32), pick_device("cpu"), current_dist(), None,
                 None, [])
    t0 = time.time()
    emb, info = T._frozen_embeddings(job, corpus, CACHE)
    return emb, info, time.time() - t0


def post_processed(emb: torch.Tensor, train: np.ndarray) -> dict[str, torch.Tensor]:
    """The raw embeddings and their train-fitted post-processings."""
    x = emb.double()
    xc = x - x[train].mean(0)
    _, s, vt = torch.linalg.svd(xc[train], full_matrices=False)
    out = {"raw": emb.float(), "centred": xc.float()}
    for d in (1, 3, 10):
        p = vt[:d]
        out[f"minus top {d} PCs"] = (xc - (xc @ p.T) @ p).float()
    d = min(128, len(s))
    scale = s[:d] / np.sqrt(len(train))
    out[f"PCA-whitened ({d} dims)"] = ((xc @ vt[:d].T) / (scale + 1e-3 * scale[0])).float()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--settings", default=";".join(DEFAULT_SETTINGS), help="';'-separated encoder settings")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="", help="suffix of the result file, e.g. the encoder's name")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus)
    counts = sp.csr_matrix(corpus.counts, dtype=np.float32)
    train, dev = (np.asarray(corpus.splits[s], dtype=np.int64) for s in ("train", "dev"))
    log_p = T.log_unigram(corpus.split_counts("train"))
    lexical = tfidf_features(counts, train)
    base = KnnIndex(lexical, counts, train, log_p)
    k, e, p = base.select(dev)
    rows = [{"setting": "lexical (TF-IDF, no transformer)", "post": "", "a": 1.0, "k": k, "eps": e, "dev_ppl": p}]
    uni = T.unigram_perplexity(corpus.split_counts("dev"), log_p)
    print(f"{args.corpus}: unigram {uni:,.0f}, lexical {p:,.0f} (k {k}, ε {e})", flush=True)
    out = OUT / f"encoders-{f'{args.tag}-' if args.tag else ''}{Path(args.corpus).stem}.json"
    for text in filter(None, (s.strip() for s in args.settings.split(";"))):
        cfg = parse_setting(text)
        emb, info, wall = embeddings(corpus, cfg)
        print(f"{text}: {tuple(emb.shape)}, {info.get('windows', '?')} windows, "
              f"{'cached' if info.get('embeddings_cached') else f'encoded in {wall:.0f} s'}", flush=True)
        for post, f in post_processed(emb, train).items():
            for a in MIXES:
                views = [(f, 1.0)] if a == 0 else [(lexical, a), (f, 1 - a)]
                k, e, p = base.with_features(views).select(dev)
                rows.append({"setting": text, "post": post, "a": a, "k": k, "eps": e, "dev_ppl": p,
                             "windows": info.get("windows"), "encode_s": None if info.get("embeddings_cached")
                             else round(wall, 1)})
                print(f"  {post:24s} a={a:.2f}  k={k:3d} ε={e:.2f}  dev ppl {p:8.1f}", flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"corpus": args.corpus, "unigram_dev_ppl": uni, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
