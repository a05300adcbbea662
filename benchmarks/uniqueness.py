"""Topic uniqueness under distillation: why distilled runs lose TU, and target corrections that keep the NPMI gain.

    python benchmarks/uniqueness.py diag --corpus demo            # where the teacher targets put their mass
    python benchmarks/uniqueness.py run --corpus demo --variants base,lex,bg0.5 --seeds 3
    python benchmarks/uniqueness.py report --corpus demo          # tables from every cached run

Every variant is a modification of the lexical teacher's dense logits z (N×V) and/or of the distillation settings;
the student is the default StudentConfig (K = 20, 200 epochs), λ = 0.5 unless the variant says otherwise, seeds
``seed_list(n)``, paired by seed with the λ = 0 baseline (``base``) and the uncorrected lexical teacher (``lex``).
Runs are cached as JSON under $BAT_CACHE_DIR/uniqueness/<corpus>/<variant>-<seed>.json.

Variant names:
  base            λ = 0
  lex             uncorrected lexical teacher (k, ε chosen by dev perplexity), λ = 0.5, T = 1
  lexfull         the same logits, but stored densely (no top-512 + tail compression)
  lam<x>          λ = x (uncorrected)
  T<x>            temperature x
  bg<γ>           z' = z − γ·log p_unigram  (the student's frozen background is the same add-one log unigram)
  eps<e>          knn logits rebuilt with target smoothing ε = e (same k as the dev-perplexity selection)
  k<n>            knn logits rebuilt with k = n (same ε)
  nbg<γ>          neighbour part only, background-corrected: z' = log((1−ε)·m + ε·u) with m' ∝ m·u^(−γ)
Variants combine with '+', e.g. eps0.01+bg0.5 (logit transforms apply in order).
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

from bat_core.config import DistillConfig, StudentConfig, TeacherConfig
from bat_core.data.corpus import load_corpus
from bat_core.evaluation.metrics import top_words
from bat_core.grid import seed_list
from bat_core.teachers.build import build_teacher, log_unigram
from bat_core.teachers.neighbours import KnnIndex, tfidf_features
from bat_core.teachers.store import TeacherLogits
from bat_core.training.trainer import fit_student

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("BAT_CACHE_DIR", ROOT / ".bat_cache"))
OUT = CACHE / "uniqueness"


class Setup:
    """A corpus, its lexical teacher, the dense knn index (to rebuild logits) and the word frequencies."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.corpus = load_corpus(name)
        self.store = build_teacher(self.corpus, TeacherConfig(kind="lexical"), CACHE)
        self.k = int(self.store.meta["knn_k"])
        self.eps = float(self.store.meta["knn_smoothing"])
        self.train = np.asarray(self.corpus.splits["train"])
        self.counts = sp.csr_matrix(self.corpus.counts, dtype=np.float32)
        self.log_u = log_unigram(self.corpus.split_counts("train"))
        self._index: KnnIndex | None = None
        self.freq_order = np.argsort(-np.asarray(self.corpus.split_counts("train").sum(axis=0)).ravel())

    @property
    def index(self) -> KnnIndex:
        if self._index is None:
            self._index = KnnIndex(tfidf_features(self.counts, self.train), self.counts, self.train, self.log_u)
        return self._index

    def knn(self, k: int | None = None, eps: float | None = None) -> np.ndarray:
        k = self.k if k is None else k
        eps = self.eps if eps is None else eps
        return self.index.logits(np.arange(self.corpus.n_docs), k, eps).numpy()

    def mean_nb(self, k: int | None = None) -> np.ndarray:
        """Neighbour mean m (no smoothing), N×V."""
        k = self.k if k is None else k
        out = np.zeros((self.corpus.n_docs, self.counts.shape[1]))
        for d, idx in self.index.neighbours(np.arange(self.corpus.n_docs), k):
            out[d] = self.index.mean_distribution(idx)
        return out


def parse_variant(name: str, s: Setup) -> tuple[np.ndarray | None, bool, dict]:  # noqa: C901, E501
    """(dense logits or None for base, keep-dense flag, DistillConfig kwargs)."""
    if name == "base":
        return None, False, {"lam": 0.0}
    dist = {"lam": 0.5}
    z = None
    dense = False
    k, eps = None, None
    transforms = []
    for part in name.split("+"):
        if part == "lex":
            continue
        if part == "lexfull":
            dense = True
        elif part.startswith("lam"):
            dist["lam"] = float(part[3:])
        elif part.startswith("T"):
            dist["temperature"] = float(part[1:])
        elif part.startswith("clip"):
            dist["clip"] = float(part[4:])
        elif part.startswith("eps"):
            eps = float(part[3:])
        elif part.startswith("k"):
            k = int(part[1:])
        elif part.startswith("nbg"):
            transforms.append(("nbg", float(part[3:])))
        elif part.startswith("bg"):
            transforms.append(("bg", float(part[2:])))
        else:
            raise SystemExit(f"unknown variant part {part!r}")
    if any(t == "nbg" for t, _ in transforms):
        m = s.mean_nb(k)
        e = s.eps if eps is None else eps
        u = np.exp(s.log_u)[None, :]
        for kind, g in transforms:
            if kind == "nbg":
                m = m * u ** (-g)
                m /= m.sum(axis=1, keepdims=True)
        z = np.log((1 - e) * m + e * u).astype(np.float32)
        transforms = [t for t in transforms if t[0] != "nbg"]
    elif k is not None or eps is not None:
        z = s.knn(k, eps)
    else:
        z = s.store.dense(np.arange(s.corpus.n_docs))
    for _kind, g in transforms:
        z = z - g * s.log_u[None, :].astype(np.float32)
    return z, dense, dist


def run_path(corpus: str, variant: str, seed: int) -> Path:
    return OUT / corpus / f"{variant}-{seed}.json"


def run_variants(s: Setup, variants: list[str], seeds: list[int]) -> None:
    for v in variants:
        todo = [sd for sd in seeds if not run_path(s.name, v, sd).exists()]
        if not todo:
            continue
        z, dense, dist = parse_variant(v, s)
        teacher = None
        if z is not None:
            teacher = TeacherLogits.from_dense(z, meta={"key": f"uniq-{s.name}-{v}", "variant": v},
                                               k=z.shape[1] if dense else 512)
        for sd in todo:
            t0 = time.time()
            r = fit_student(s.corpus, StudentConfig(seed=sd), DistillConfig(**dist), teacher)
            top = top_words(r.beta, 10)
            rec = {"corpus": s.name, "variant": v, "seed": sd, "distill": dist,
                   "dev_npmi": r.metrics["dev_npmi"], "test_npmi": r.metrics["test_npmi"], "tu": r.metrics["tu"],
                   "best_epoch": r.metrics["best_epoch"], "top": top.tolist(), "topics": r.topics,
                   "wall_s": time.time() - t0}
            p = run_path(s.name, v, sd)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(rec))
            print(f"{s.name} {v:22s} seed {sd}: dev {rec['dev_npmi']:.4f} test {rec['test_npmi']:.4f} "
                  f"TU {rec['tu']:.3f} ({rec['wall_s']:.0f}s)", flush=True)


# -------------------------------------------------------------------------------------------------- diagnostics
def mass_stats(P: np.ndarray, freq_order: np.ndarray) -> dict[str, float]:
    """Rows of P are distributions: mean share on the 50/100 most frequent train words, median number of words
    carrying 90% of the mass, mean entropy-perplexity."""
    top50, top100 = freq_order[:50], freq_order[:100]
    srt = -np.sort(-P, axis=1)
    n90 = (np.cumsum(srt, axis=1) < 0.9).sum(axis=1) + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(P > 0, P * np.log(P), 0.0), axis=1)
    return {"top50": float(P[:, top50].sum(1).mean()), "top100": float(P[:, top100].sum(1).mean()),
            "n90": float(np.median(n90)), "ppl": float(np.median(np.exp(ent)))}


def softmax(z: np.ndarray, T: float = 1.0) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64) / T
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def diag(s: Setup, variants: list[str]) -> None:
    tr = s.train
    x = s.counts[tr].toarray().astype(np.float64)
    bow = x / np.maximum(x.sum(1, keepdims=True), 1)
    print(f"\n### {s.name}: teacher k = {s.k}, ε = {s.eps}; {len(tr)} train docs; V = {s.counts.shape[1]}")
    u = np.exp(s.log_u)
    print(f"unigram: share on top-50 words {u[s.freq_order[:50]].sum():.3f}, top-100 {u[s.freq_order[:100]].sum():.3f}")
    print("\n| target (train docs, T = 1) | mass on 50 most frequent | on 100 most frequent | words for 90% (median) "
          "| exp-entropy (median) | mass on words absent from the doc |")
    print("|---|---|---|---|---|---|")
    rows = [("observed BoW x/N", bow)]
    for v in variants:
        z, _, dist = parse_variant(v, s)
        if z is None:
            continue
        rows.append((v + (f" (T = {dist['temperature']})" if "temperature" in dist else ""),
                     softmax(z[tr], dist.get("temperature", 1.0))))
    for name, P in rows:
        m = mass_stats(P, s.freq_order)
        absent = float((P * (x == 0)).sum(1).mean())
        print(f"| {name} | {m['top50']:.3f} | {m['top100']:.3f} | {m['n90']:.0f} | {m['ppl']:.0f} | {absent:.3f} |")
    # what the student can fit: the target's lift over the background, log(t/u), for each doc's top words
    print("\nLift of the target over the background, per document: of the 10 words with the highest target mass, "
          "how many are among the 100 most frequent train words (mean over train docs); and of the 10 words with the "
          "highest log(t/u), how many are words the document itself does not contain")
    print("\n| target | top-10 by mass ∩ top-100 frequent | top-10 by lift: absent from doc "
          "| distinct words in the docs' top-10 by mass | top-10 overlap of two random docs |")
    print("|---|---|---|---|---|")
    pair_rng = np.random.default_rng(0)
    pa, pb = pair_rng.integers(len(tr), size=(2, 5000))
    noise = 1e-9 * pair_rng.random(x.shape)  # BoW ties broken at random
    top100 = np.zeros(x.shape[1], bool)
    top100[s.freq_order[:100]] = True
    for name, P in rows:
        t10 = np.argsort(-(P + noise), axis=1)[:, :10]
        onehot = np.zeros_like(P, dtype=bool)
        np.put_along_axis(onehot, t10, True, axis=1)
        overlap = float((onehot[pa] & onehot[pb]).sum(1).mean())
        lift = np.log(np.maximum(P, 1e-12)) - s.log_u[None, :]
        if name.startswith("observed"):
            lift = np.where(P > 0, lift, -np.inf)
        l10 = np.argsort(-lift, axis=1)[:, :10]
        print(f"| {name} | {top100[t10].sum(1).mean():.2f} | "
              f"{np.take_along_axis(x == 0, l10, axis=1).sum(1).mean():.2f} | {len(np.unique(t10))} | {overlap:.2f} |")


def top_frequent_overlap(P: np.ndarray, freq_order: np.ndarray, n_top: int = 10, n_freq: int = 100) -> float:
    """Mean over rows of |top-n_top words by mass ∩ the n_freq most frequent train words|."""
    frequent = np.zeros(P.shape[1], bool)
    frequent[freq_order[:n_freq]] = True
    top = np.argpartition(-P, n_top - 1, axis=1)[:, :n_top]
    return float(frequent[top].sum(1).mean())


def match_gamma(z: np.ndarray, counts: sp.csr_matrix, docs: np.ndarray, log_u: np.ndarray, freq_order: np.ndarray,
                grid: np.ndarray | None = None) -> tuple[float, list[tuple]]:
    """Teacher-side choice of γ for z' = z − γ·log u, no student run: the smallest γ at which the target's 10 heaviest
    words contain no more of the 100 most frequent train words than the documents' own bags of words do (mean over
    ``docs``), i.e. the correction just removes the frequent-word excess of the target's head."""
    grid = np.round(np.arange(0.0, 1.0001, 0.05), 2) if grid is None else grid
    x = counts[docs].toarray().astype(np.float64)
    noise = 1e-9 * np.random.default_rng(0).random(x.shape)  # ties in small counts broken at random, not by index
    ref = top_frequent_overlap(x / np.maximum(x.sum(1, keepdims=True), 1) + noise, freq_order)
    table = []
    chosen = None
    for g in grid:
        o = top_frequent_overlap(softmax(z[docs] - g * log_u[None, :]), freq_order)
        table.append((float(g), o))
        if chosen is None and o <= ref:
            chosen = float(g)
    return (chosen if chosen is not None else float(grid[-1])), [("bow", ref)] + table


# -------------------------------------------------------------------------------------------------------- report
def load_runs(corpus: str) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    for p in sorted((OUT / corpus).glob("*.json")):
        r = json.loads(p.read_text())
        out.setdefault(r["variant"], {})[r["seed"]] = r
    return out


def topic_stats(rec: dict, freq_order: np.ndarray) -> tuple[float, float, float, float, float]:
    """(mean number of each topic's top-10 words among the 50 / 100 most frequent train words, number of words
    listed by ≥ 3 topics, the part of the TU deficit 1 − TU due to the 100 most frequent words, topic pairs sharing
    ≥ 3 top words)."""
    top = np.asarray(rec["top"])
    r50 = np.isin(top, freq_order[:50]).sum(1).mean()
    r100 = np.isin(top, freq_order[:100]).sum(1).mean()
    w, c = np.unique(top, return_counts=True)
    cnt = dict(zip(w.tolist(), c.tolist()))
    slots = np.array([[1 - 1 / cnt[x] for x in row] for row in top.tolist()])  # deficit per slot; mean = 1 − TU
    deficit_freq = float((slots * np.isin(top, freq_order[:100])).mean())
    sets = [set(row) for row in top.tolist()]
    pairs = sum(len(a & b) >= 3 for i, a in enumerate(sets) for b in sets[i + 1:])
    return float(r50), float(r100), float((c >= 3).sum()), deficit_freq, float(pairs)


def report(corpus: str, seeds: list[int], freq_order: np.ndarray | None, vocab: list[str] | None,
           complete: bool = False) -> None:
    runs = load_runs(corpus)
    base = runs.get("base", {})
    lex = runs.get("lex", {})

    def paired(v: str, ref: dict, key: str) -> tuple[float, float, int, int]:
        common = [sd for sd in seeds if sd in runs[v] and sd in ref]
        d = np.array([runs[v][sd][key] - ref[sd][key] for sd in common])
        if not len(d):
            return float("nan"), float("nan"), 0, 0
        return float(d.mean()), float(d.std()), int((d > 0).sum()), len(d)

    print(f"\n### {corpus} ({len(seeds)} seeds; Δ = mean paired difference ± std over seeds)")
    print("\n| variant | n | dev NPMI | TU | Δ dev vs base | Δ TU vs base | test NPMI | Δ test vs base (won) "
          "| Δ test vs lex (won) | top-10 ∩ 50 most frequent | ∩ 100 most frequent | words in ≥3 topics "
          "| 1 − TU: from 100 most frequent | from other words | topic pairs sharing ≥3 words |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    order = sorted(runs, key=lambda v: (v != "base", v != "lex", v))
    for v in order:
        rs = [runs[v][sd] for sd in seeds if sd in runs[v]]
        if not rs or (complete and len(rs) < len(seeds)):
            continue
        dev = np.mean([r["dev_npmi"] for r in rs])
        tu = np.mean([r["tu"] for r in rs])
        test = np.mean([r["test_npmi"] for r in rs])
        dd, _, _, _ = paired(v, base, "dev_npmi") if v != "base" else (np.nan,) * 4
        dtu, _, _, _ = paired(v, base, "tu") if v != "base" else (np.nan,) * 4
        if v != "base":
            dt, st, w, n = paired(v, base, "test_npmi")
            vb = f"{dt:+.4f} ± {st:.4f} ({w}/{n})"
        else:
            vb = "–"
        if v not in ("base", "lex") and lex:
            dl, sl, wl, nl = paired(v, lex, "test_npmi")
            vl = f"{dl:+.4f} ± {sl:.4f} ({wl}/{nl})"
        else:
            vl = "–"
        fs = [topic_stats(r, freq_order) for r in rs]
        f50, f100, multi, dfreq, pairs = np.mean(fs, axis=0)
        dds = "–" if v == "base" else f"{dd:+.4f}"
        dtus = "–" if v == "base" else f"{dtu:+.3f}"
        print(f"| {v} | {len(rs)} | {dev:.4f} | {tu:.3f} | {dds} | {dtus} | {test:.4f} | {vb} | {vl} | {f50:.2f} "
              f"| {f100:.2f} | {multi:.1f} | {dfreq:.3f} | {1 - tu - dfreq:.3f} | {pairs:.1f} |")
    # the dev rule: among γ ∈ {0 (lex)} ∪ {bg grid}, the highest mean dev NPMI whose TU (from the run's topics) is at
    # most 0.05 below the baseline's; only variants run with every seed compete
    grid = [v for v in runs if (v == "lex" or (v.startswith("bg") and "+" not in v))
            and all(sd in runs[v] for sd in seeds)]
    if base and all(sd in base for sd in seeds) and grid:
        tu0 = np.mean([base[sd]["tu"] for sd in seeds])
        ok = [v for v in grid if np.mean([runs[v][sd]["tu"] for sd in seeds]) >= tu0 - 0.05]
        if ok:
            pick = max(ok, key=lambda v: np.mean([runs[v][sd]["dev_npmi"] for sd in seeds]))
            print(f"\ndev rule (max dev NPMI s.t. TU ≥ baseline TU − 0.05, over {', '.join(sorted(grid))}): {pick}; "
                  f"test NPMI {np.mean([runs[pick][sd]['test_npmi'] for sd in seeds]):.4f}")
    if vocab is not None and base and lex:
        sd = seeds[0]
        for v in ("base", "lex"):
            if sd in runs[v]:
                top = np.asarray(runs[v][sd]["top"])
                w, c = np.unique(top, return_counts=True)
                shared = sorted(zip(c, w), reverse=True)[:12]
                print(f"\n{v}, seed {sd}: words listed by the most topics: "
                      + ", ".join(f"{vocab[i]} ({n}, freq rank {int(np.where(freq_order == i)[0][0]) + 1})"
                                  for n, i in shared if n >= 2))


def final(corpus: str, seeds: list[int], variants: list[str]) -> None:
    """The summary table: dev NPMI, TU, test NPMI, paired Δ vs the baseline and vs the uncorrected teacher."""
    runs = load_runs(corpus)

    def col(v: str, key: str) -> np.ndarray:
        return np.array([runs[v][sd][key] for sd in seeds])

    def delta(v: str, ref: str, key: str, won: bool = False) -> str:
        if v == ref or ref not in runs:
            return "–"
        d = col(v, key) - col(ref, key)
        return f"{d.mean():+.4f} ± {d.std():.4f}" + (f" ({(d > 0).sum()}/{len(d)})" if won else "")

    print(f"\n{corpus}, {len(seeds)} seeds\n")
    print("| variant | dev NPMI | Δ dev vs base | Δ dev vs lex | TU | Δ TU vs base | test NPMI | Δ test vs base (won) "
          "| Δ test vs lex (won) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v in variants:
        if v not in runs or any(sd not in runs[v] for sd in seeds):
            continue
        print(f"| {v} | {col(v, 'dev_npmi').mean():.4f} | {delta(v, 'base', 'dev_npmi')} | "
              f"{delta(v, 'lex', 'dev_npmi') if v != 'base' else '–'} | {col(v, 'tu').mean():.3f} | "
              f"{delta(v, 'base', 'tu')} | {col(v, 'test_npmi').mean():.4f} | {delta(v, 'base', 'test_npmi', True)} | "
              f"{delta(v, 'lex', 'test_npmi', True) if v != 'base' else '–'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=("diag", "run", "report", "gamma", "final"))
    ap.add_argument("--corpus", default="demo")
    ap.add_argument("--variants", default="lex")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--complete", action="store_true", help="report: only variants run with every seed")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = seed_list(args.seeds)
    variants = [v for v in args.variants.split(",") if v]
    s = Setup(args.corpus)
    if args.cmd == "diag":
        diag(s, variants)
    elif args.cmd == "gamma":
        z = s.store.dense(np.arange(s.corpus.n_docs))
        for split in ("train", "dev"):
            g, table = match_gamma(z, s.counts, np.asarray(s.corpus.splits[split]), s.log_u, s.freq_order)
            print(f"{s.name} {split}: γ = {g}  (" + ", ".join(f"{a}: {b:.2f}" for a, b in table) + ")")
    elif args.cmd == "final":
        final(args.corpus, seeds, variants)
    elif args.cmd == "run":
        run_variants(s, variants, seeds)
    else:
        report(args.corpus, seeds, s.freq_order, s.corpus.vocab, args.complete)


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
