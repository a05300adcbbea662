"""Quality benchmark: the paper's protocol on a corpus, BAT against the λ = 0 baseline, paired by seed.

    python benchmarks/quality.py --corpus newsarticles            # K = 50, λ ∈ {0, .25, .5, .75, 1}, 5 seeds
    python benchmarks/quality.py --corpus demo --quick            # 3 seeds, λ ∈ {0, default λ}

The teacher is trained once (cached under --cache-dir); every (λ, seed) run is cached too, so a rerun only trains
what changed. Prints and writes a markdown table, a JSON file and a plotly figure (NPMI vs λ, ± std bands) under
benchmarks/results/. Settings not given on the command line are the engine's defaults (bat_core.config), which is
what the CLI and the app use.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bat_core import datasets  # noqa: E402
from bat_core.align import align_topics  # noqa: E402
from bat_core.cli import seed_list  # noqa: E402
from bat_core.config import CorpusConfig, DistillConfig, StudentConfig, TeacherConfig  # noqa: E402
from bat_core.corpus import load_corpus, vectorize_reference  # noqa: E402
from bat_core.metrics import npmi_per_topic, robust_summary, top_words  # noqa: E402
from bat_core.pipeline import get_run, get_teacher, mean_std  # noqa: E402
from bat_core.progress import TqdmProgress  # noqa: E402

DEFAULT_K = {"newsarticles": 50}  # small corpora: K = 20


def _fmt(v: list[float], digits: int = 4) -> str:
    ms = mean_std(v)
    return f"{ms['mean']:.{digits}f} ± {ms['std']:.{digits}f}"


def head_to_head(base, bat) -> tuple[int, int]:
    """Aligned topic pairs (optimal JSD matching) where BAT's per-topic test NPMI beats the baseline's."""
    pairs = align_topics(base.beta, bat.beta)
    a = base.metrics["test_npmi_per_topic"]
    b = bat.metrics["test_npmi_per_topic"]
    return sum(b[j] > a[i] for i, j, _ in pairs), len(pairs)


def arm(dcfg: DistillConfig, lam: float) -> DistillConfig:
    """The distillation settings at λ; λ = 0 is always the plain baseline (no teacher anywhere, encoder input off)."""
    return replace(dcfg, lam=lam) if lam > 0 else DistillConfig()


def _train_one(task: tuple) -> str:
    """Worker for --jobs: load the corpus and the cached teacher, train one (λ, seed) run into the run cache."""
    source, ccfg, tcfg, scfg, dcfg, cache_dir = task
    corpus = load_corpus(source, ccfg)
    teacher = get_teacher(corpus, tcfg, cache_dir) if dcfg.active else None
    return get_run(corpus, scfg, dcfg, teacher, cache_dir).key


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="newsarticles", help="newsarticles, demo, mini20ng, or a file path")
    p.add_argument("--quick", action="store_true", help="3 seeds and λ ∈ {0, default}")
    p.add_argument("--topics", type=int, default=None)
    p.add_argument("--lambdas", default=None, help="comma-separated (default 0,0.25,0.5,0.75,1)")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--clip", type=float, default=None)
    p.add_argument("--vocab-size", type=int, default=None)
    p.add_argument("--teacher-mode", default=None)
    p.add_argument("--teacher-epochs", type=int, default=None)
    p.add_argument("--teacher-head", default=None)
    p.add_argument("--cross-fit", type=int, default=None)
    p.add_argument("--encode-logits", default=None)
    p.add_argument("--no-boilerplate-removal", action="store_true")
    p.add_argument("--jobs", type=int, default=1, help="runs trained in parallel (each uses one CPU thread)")
    p.add_argument("--tag", default="", help="suffix for the result files, e.g. a configuration name")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".bat_cache")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)

    def given(**kw):
        return {k: v for k, v in kw.items() if v is not None}

    t_start = time.time()
    ccfg = CorpusConfig(**given(vocab_size=args.vocab_size), remove_boilerplate=not args.no_boilerplate_removal)
    tcfg = TeacherConfig(**given(mode=args.teacher_mode, epochs=args.teacher_epochs, head=args.teacher_head,
                                 cross_fit_folds=args.cross_fit))
    dflt = DistillConfig()
    dcfg = replace(dflt, **given(temperature=args.temperature, clip=args.clip, encode_logits=args.encode_logits))
    name = Path(args.corpus).stem if Path(args.corpus).exists() else args.corpus
    k = args.topics or DEFAULT_K.get(name, 20)
    scfg = replace(StudentConfig(n_topics=k), **given(epochs=args.epochs))
    if args.lambdas:
        lambdas = [float(v) for v in args.lambdas.split(",")]
    else:
        lambdas = [0.0, DistillConfig.__dataclass_fields__["lam"].default or 0.5] if args.quick else \
            [0.0, 0.25, 0.5, 0.75, 1.0]
        lambdas = sorted(set(lambdas))
    seeds = seed_list(args.seeds or (3 if args.quick else 5))
    progress = TqdmProgress()

    corpus = load_corpus(args.corpus, ccfg, progress)
    wiki = vectorize_reference(datasets.load("wiki"), corpus)
    teacher = None
    t_teacher = 0.0
    if any(lam > 0 for lam in lambdas) or dcfg.encode_logits != "off":
        t0 = time.time()
        teacher = get_teacher(corpus, tcfg, args.cache_dir, progress)
        t_teacher = time.time() - t0
    runs: dict[tuple[float, int], object] = {}
    t_students = time.time()
    if args.jobs > 1:  # fill the run cache in parallel, the default λ first; the loop below then only reads it
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        first = sorted(lambdas, key=lambda lam: (lam != 0.5, lam == 0.0, lam))
        tasks = [(args.corpus, ccfg, tcfg, replace(scfg, seed=s), arm(dcfg, lam), args.cache_dir)
                 for lam in first for s in seeds]
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for i, key in enumerate(pool.map(_train_one, tasks), 1):
                print(f"[{i}/{len(tasks)}] run {key} done after {time.time() - t_students:.0f} s", flush=True)
    for lam in lambdas:
        for seed in seeds:
            d = arm(dcfg, lam)
            runs[(lam, seed)] = get_run(corpus, replace(scfg, seed=seed), d, teacher if d.active else None,
                                        args.cache_dir, progress)
    t_students = time.time() - t_students
    progress.close()

    rows = []
    for lam in lambdas:
        rs = [runs[(lam, s)] for s in seeds]
        test = [r.metrics["test_npmi"] for r in rs]
        robust = [robust_summary(np.array(r.metrics["test_npmi_per_topic"])) for r in rs]
        wiki_npmi = [float(npmi_per_topic(top_words(r.beta, 10), wiki).mean()) for r in rs]
        row = {"lam": lam, "test_npmi": test, "tu": [r.metrics["tu"] for r in rs],
               "median_topic_npmi": [x["median"] for x in robust],
               "npmi_wo_artefacts": [x["mean_wo_artefacts"] for x in robust],
               "n_artefact_topics": [x["n_artefacts"] for x in robust], "wiki_npmi": wiki_npmi,
               "dev_npmi": [r.metrics["dev_npmi"] for r in rs], "best_epoch": [r.metrics["best_epoch"] for r in rs]}
        if lam > 0 and 0.0 in lambdas:
            base = [runs[(0.0, s)] for s in seeds]
            diff = [b.metrics["test_npmi"] - a.metrics["test_npmi"] for a, b in zip(base, rs)]
            h2h = [head_to_head(a, b) for a, b in zip(base, rs)]
            row.update(paired_diff=diff, seeds_won=int(sum(x > 0 for x in diff)),
                       rel_gain=float(np.mean(diff) / np.mean([a.metrics["test_npmi"] for a in base])),
                       pairs_won=[w for w, _ in h2h], pairs_total=[n for _, n in h2h])
        rows.append(row)

    tmeta = teacher.meta if teacher is not None else {}
    result = {
        "corpus": {"name": corpus.name, "hash": corpus.hash, **corpus.stats},
        "settings": {"corpus": ccfg.to_dict(), "teacher": tcfg.to_dict(), "student": scfg.to_dict(),
                     "distill": dcfg.to_dict(), "lambdas": lambdas, "seeds": seeds},
        "teacher": {k: tmeta.get(k) for k in ("mode", "head", "knn_k", "knn_smoothing", "dev_perplexity",
                                              "train_perplexity", "unigram_dev_perplexity", "cross_fit_folds",
                                              "wall_time_s", "device")},
        "rows": rows,
        "time_s": {"teacher": t_teacher, "students": t_students, "total": time.time() - t_start},
    }
    tag = f"-{args.tag}" if args.tag else ""
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"quality-{name}{tag}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    md = render_markdown(result)
    stem.with_suffix(".md").write_text(md)
    # plotly.js from its CDN keeps the file small; the numbers are in the .md and .json next to it
    lambda_figure(rows).write_html(str(stem.with_suffix(".html")), include_plotlyjs="cdn")
    print(md)
    return 0


def lambda_figure(rows):
    """Test NPMI and topic uniqueness against λ, mean ± std over seeds as bands."""
    import plotly.graph_objects as go

    lam = [r["lam"] for r in rows]
    fig = go.Figure()
    for key, name in (("test_npmi", "test NPMI"), ("tu", "topic uniqueness")):
        m = np.array([mean_std(r[key])["mean"] for r in rows])
        s = np.array([mean_std(r[key])["std"] for r in rows])
        yaxis = "y" if key == "test_npmi" else "y2"
        fig.add_trace(go.Scatter(x=lam + lam[::-1], y=list(m + s) + list((m - s)[::-1]), fill="toself",
                                 opacity=0.2, line={"width": 0}, showlegend=False, yaxis=yaxis, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=lam, y=m, mode="lines+markers", name=name, yaxis=yaxis))
    fig.update_layout(title="Test NPMI and topic uniqueness against λ (mean ± std over seeds)",
                      xaxis_title="λ (distillation weight)", yaxis_title="test NPMI",
                      yaxis2={"title": "TU", "overlaying": "y", "side": "right"})
    return fig


def render_markdown(res: dict) -> str:
    c, t, st = res["corpus"], res["teacher"], res["settings"]
    nan = float("nan")
    lines = [
        f"## {c['name']}: {c['documents']} documents ({c['train_docs']}/{c['dev_docs']}/{c['test_docs']} "
        f"train/dev/test), V = {c['vocabulary']}, K = {st['student']['n_topics']}, {len(st['seeds'])} seeds, "
        f"{st['student']['epochs']} epochs",
        "",
        f"Teacher: mode {t.get('mode')}, head {t.get('head')}"
        + (f" (k = {t.get('knn_k')}, smoothing {t.get('knn_smoothing')}, chosen on dev)" if t.get("knn_k") else "")
        + ", "
        f"dev perplexity {t.get('dev_perplexity') or nan:.1f} vs unigram {t.get('unigram_dev_perplexity') or nan:.1f} "
        f"(train {t.get('train_perplexity') or nan:.1f}),"
        f" cross-fit folds {t.get('cross_fit_folds')}. Distillation: T = {st['distill']['temperature']}, "
        f"c = {st['distill']['clip']}, encoder input {st['distill']['encode_logits']}.",
        "",
        "| λ | test NPMI | paired Δ vs λ=0 | seeds won | rel. gain | aligned pairs won | median topic NPMI | "
        "NPMI w/o ≥0.9 topics | TU | wiki NPMI |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        if "paired_diff" in r:
            pd_ = _fmt(r["paired_diff"])
            won = f"{r['seeds_won']}/{len(r['paired_diff'])}"
            rel = f"{100 * r['rel_gain']:+.1f}%"
            pairs = f"{sum(r['pairs_won'])}/{sum(r['pairs_total'])}"
        else:
            pd_ = won = rel = pairs = "–"
        lines.append(f"| {r['lam']:g} | {_fmt(r['test_npmi'])} | {pd_} | {won} | {rel} | {pairs} | "
                     f"{_fmt(r['median_topic_npmi'])} | {_fmt(r['npmi_wo_artefacts'])} | {_fmt(r['tu'], 3)} | "
                     f"{_fmt(r['wiki_npmi'])} |")
    ts = res["time_s"]
    lines += ["", f"Wall time: teacher {ts['teacher']:.0f} s (0 when cached), students {ts['students']:.0f} s, "
                  f"total {ts['total']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
