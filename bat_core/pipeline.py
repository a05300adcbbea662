"""The whole path, shared by the CLI and the app: corpus → teacher (cached) → student runs (cached) → summary."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .config import DistillConfig, FitConfig, StudentConfig, TeacherConfig
from .corpus import Corpus, load_corpus
from .progress import Progress, ShouldStop
from .runs import Run, RunStore, run_key


def default_cache_dir() -> Path:
    return Path(os.environ.get("BAT_CACHE_DIR", ".bat_cache")).expanduser()


def needs_teacher(d: DistillConfig) -> bool:
    return d.active


def get_teacher(corpus: Corpus, tcfg: TeacherConfig, cache_dir: Path | None = None, progress: Progress | None = None,
                should_stop: ShouldStop | None = None):  # -> TeacherLogits
    """The teacher for (corpus, settings): trained once, then read from the cache."""
    from .teacher import build_teacher  # imports transformers: only when a teacher is needed

    return build_teacher(corpus, tcfg, cache_dir if cache_dir is not None else default_cache_dir(), progress,
                         should_stop)


def get_run(corpus: Corpus, scfg: StudentConfig, dcfg: DistillConfig, teacher=None, cache_dir: Path | None = None,
            progress: Progress | None = None, should_stop: ShouldStop | None = None) -> Run:
    """The student run for these settings: from the run cache when it was trained before, else trained and saved."""
    from .train import fit_student

    store = RunStore((cache_dir if cache_dir is not None else default_cache_dir()) / "runs")
    tkey = teacher.key if (teacher is not None and dcfg.active) else None
    key = run_key(corpus.hash, tkey, scfg.to_dict(), dcfg.canonical().to_dict())
    run = store.load(key)
    if run is None:
        run = fit_student(corpus, scfg, dcfg, teacher if dcfg.active else None, progress, should_stop)
        store.save(run)
    return run


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean, sample std (0 for one value) and count: how every result over seeds is reported."""
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Per λ: mean ± std over seeds of test NPMI and TU; and BAT against λ = 0 paired by seed."""
    by_lam: dict[float, list[Run]] = {}
    for r in runs:
        by_lam.setdefault(r.lam, []).append(r)
    out: dict[str, Any] = {}
    base = {r.seed: r for r in by_lam.get(0.0, [])}
    for lam, rs in sorted(by_lam.items()):
        entry: dict[str, Any] = {
            "test_npmi": mean_std([r.metrics["test_npmi"] for r in rs]),
            "dev_npmi": mean_std([r.metrics["dev_npmi"] for r in rs]),
            "tu": mean_std([r.metrics["tu"] for r in rs]),
            "seeds": sorted(r.seed for r in rs),
        }
        paired = [r.metrics["test_npmi"] - base[r.seed].metrics["test_npmi"] for r in rs if r.seed in base]
        if lam > 0 and paired:
            entry["paired_test_npmi_diff_vs_baseline"] = mean_std(paired)
            entry["seeds_won_vs_baseline"] = int(sum(d > 0 for d in paired))
            b = np.mean([base[r.seed].metrics["test_npmi"] for r in rs if r.seed in base])
            entry["relative_gain_vs_baseline"] = float(np.mean(paired) / b) if b else None
        out[f"{lam:g}"] = entry
    return out


def fit(source: str | Path, cfg: FitConfig, lambdas: list[float], seeds: list[int], out_dir: Path,
        cache_dir: Path | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Train the teacher if any λ needs it, then every (λ, seed) run; write ``out_dir/summary.json``."""
    t0 = time.time()
    corpus = load_corpus(source, cfg.corpus, progress)
    teacher = None
    teacher_time = 0.0
    dcfgs = [replace(cfg.distill, lam=float(lam)) for lam in lambdas]
    from .train import check_trainable

    check_trainable(corpus, cfg.student)
    if any(needs_teacher(d) for d in dcfgs):
        t1 = time.time()
        teacher = get_teacher(corpus, cfg.teacher, cache_dir, progress)
        teacher_time = time.time() - t1
    runs = []
    for d in dcfgs:
        for seed in seeds:
            runs.append(get_run(corpus, replace(cfg.student, seed=int(seed)), d, teacher if d.active else None,
                                cache_dir, progress))
    summary = {
        "corpus": {"name": corpus.name, "hash": corpus.hash, **corpus.stats},
        "settings": cfg.to_dict(),
        "teacher": ({"key": teacher.key, **teacher.meta, "wall_time_s": teacher_time} if teacher is not None else None),
        "runs": [{"lam": r.lam, "seed": r.seed, "teacher_key": r.config["teacher_key"],
                  **{k: v for k, v in r.metrics.items()}, "topics": r.topics} for r in runs],
        "by_lambda": summarize(runs),
        "wall_time_s": time.time() - t0,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary
