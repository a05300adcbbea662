"""Settings chosen on dev data only: the background correction γ of the distillation target.

The rule (benchmarks/results/uniqueness.md): train the first seed at each γ of a small grid, keep the γ whose topic
uniqueness (computed from the run's own topics, no test data) is within ``tu_slack`` of the λ = 0 baseline's, and
among those take the highest dev NPMI. γ = 0 (no correction) is always a candidate, so the rule can say "none".
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .config import DistillConfig, StudentConfig, TeacherConfig
from .corpus import Corpus
from .progress import Progress

GAMMA_GRID = (0.0, 0.1, 0.25, 0.4, 0.5)


def choose_background_correction(corpus: Corpus, tcfg: TeacherConfig, scfg: StudentConfig, distill: DistillConfig,
                                 seed: int, cache_dir: Path | None = None, grid: tuple[float, ...] = GAMMA_GRID,
                                 tu_slack: float = 0.05, progress: Progress | None = None
                                 ) -> tuple[float, list[dict]]:
    """(chosen γ, one row per candidate: γ, dev NPMI, TU, kept, run key) for ``distill.lam``, from dev data only."""
    from .pipeline import execute, plan  # the one path; imported here to keep selection below the pipeline

    base = execute(plan(corpus, tcfg, scfg, distill, [0.0], [seed]), cache_dir, progress).runs[0]
    rows = []
    for g in grid:
        run = execute(plan(corpus, tcfg, scfg, replace(distill, background_correction=g), [distill.lam], [seed]),
                      cache_dir, progress).runs[0]
        tu, dev = run.metrics["tu"], run.metrics["dev_npmi"]
        rows.append({"gamma": g, "dev_npmi": dev, "tu": tu, "kept": tu >= base.metrics["tu"] - tu_slack,
                     "key": run.key})
    kept = [r for r in rows if r["kept"]] or rows
    best = max(kept, key=lambda r: r["dev_npmi"])
    return float(best["gamma"]), rows
