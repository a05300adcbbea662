"""Downstream benchmark: does distillation keep θ useful? Category classification from θ against λ, per student.

    python benchmarks/downstream.py                                   # bbcnews, K = 20, λ 0/0.5/1 × 3 seeds
    python benchmarks/downstream.py --corpus mini20ng --students prodlda --epochs 50

For each student (Scholar, ProdLDA) the λ ∈ {0, 0.5, 1} × 3 seeds grid is trained (or read from the run cache)
through the engine's one path (``bat_core.grid.plan``/``execute``) with the lexical teacher (TF-IDF nearest neighbours:
no transformer, so it runs anywhere in minutes). Each run's θ of the train split fits a logistic regression on the
corpus's categories, scored on the test split (``evaluation.downstream``). Prints and writes a table of accuracy and
macro-F1 (mean ± std over seeds), with test NPMI next to them, to benchmarks/results/downstream-<corpus>.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bat_core.base.progress import TqdmProgress
from bat_core.config import STUDENT_KINDS, CorpusConfig, DistillConfig, StudentConfig, TeacherConfig
from bat_core.data.corpus import load_corpus
from bat_core.evaluation.downstream import evaluate_runs
from bat_core.evaluation.stats import mean_std
from bat_core.grid import execute, plan, seed_list

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS = (0.0, 0.5, 1.0)


def _fmt(values: list[float], digits: int = 3) -> str:
    ms = mean_std(values)
    return f"{ms['mean']:.{digits}f} ± {ms['std']:.{digits}f}"


def student_rows(corpus, student: StudentConfig, seeds: list[int], cache_dir: Path, progress) -> list[dict]:
    """One row per λ: accuracy, macro-F1 and test NPMI over the seeds (the per-seed values kept)."""
    runs = execute(plan(corpus, TeacherConfig(kind="lexical"), student, DistillConfig(), LAMBDAS, seeds), cache_dir,
                   progress).runs
    scores = evaluate_runs(corpus, runs)
    rows = []
    for lam in LAMBDAS:
        mine = [(s, r) for s, r in zip(scores, runs) if s["lam"] == lam]
        rows.append({"student": student.student, "lam": lam, "seeds": [s["seed"] for s, _ in mine],
                     "accuracy": [s["accuracy"] for s, _ in mine], "macro_f1": [s["macro_f1"] for s, _ in mine],
                     "test_npmi": [r.metrics["test_npmi"] for _, r in mine],
                     "n_train": mine[0][0]["n_train"], "n_test": mine[0][0]["n_test"]})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| student | λ | accuracy | macro-F1 | test NPMI |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['student']} | {r['lam']:g} | {_fmt(r['accuracy'])} | {_fmt(r['macro_f1'])} | "
                     f"{_fmt(r['test_npmi'], 4)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="bbcnews", help="a labelled corpus: bbcnews or mini20ng")
    p.add_argument("--students", default=",".join(STUDENT_KINDS), help="comma-separated: scholar,prodlda")
    p.add_argument("--topics", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=None, help="student epochs (default: StudentConfig's)")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".bat_cache")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)

    t0 = time.time()
    corpus = load_corpus(args.corpus, CorpusConfig())
    seeds = seed_list(args.seeds)
    progress = TqdmProgress()
    rows, wall = [], {}
    for kind in [s.strip() for s in args.students.split(",") if s.strip()]:
        extra = {"epochs": args.epochs} if args.epochs else {}
        t = time.time()
        rows += student_rows(corpus, StudentConfig(n_topics=args.topics, student=kind, **extra), seeds,
                             args.cache_dir, progress)
        wall[kind] = round(time.time() - t, 1)
        print(f"{kind}: {wall[kind]} s (training or cache reads)", flush=True)
    progress.close()

    md = table(rows)
    print(md)
    name = corpus.name
    args.out.mkdir(parents=True, exist_ok=True)
    head = (f"# Downstream classification on {name}\n\n"
            f"Logistic regression (standardised θ, lbfgs, random_state 0) fitted on θ of the {rows[0]['n_train']} "
            f"train documents, scored on the {rows[0]['n_test']} test documents; K = {args.topics}, "
            f"{len(seeds)} seeds {seeds} (per-seed values below in this order), lexical teacher (TF-IDF neighbours), "
            f"epochs {args.epochs or StudentConfig().epochs}. Mean ± sample std over seeds.\n\n"
            f"Written by `python benchmarks/downstream.py --corpus {args.corpus}` in {time.time() - t0:.0f} s "
            f"(per student, training or cache reads: {wall}).\n\n")
    r3 = lambda v: ", ".join(f"{x:.3f}" for x in v)
    per_seed = "\n".join(f"- {r['student']} λ={r['lam']:g}: accuracy {r3(r['accuracy'])}; macro-F1 "
                         f"{r3(r['macro_f1'])}; test NPMI {r3(r['test_npmi'])}" for r in rows)
    (args.out / f"downstream-{name}.md").write_text(head + md + "\n\nPer seed:\n\n" + per_seed + "\n")
    return 0


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
