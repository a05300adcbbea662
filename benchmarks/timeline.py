"""When each step of a grid lands, from an empty cache: the first look (the first seed's baseline and one BAT run),
the first seed's whole λ curve, and the end, next to the estimate made before it started.

    python benchmarks/timeline.py                         # demo, the app's default grid (11 λ × 3 seeds)
    python benchmarks/timeline.py --corpus newsarticles --topics 50
    python benchmarks/timeline.py --corpus newsarticles --topics 50 --first-look-only   # stop at the first look

Prints one line per finished step (seconds since the start) and a summary line. Say the machine's load (uptime)
with the numbers: they move with it. ``measure`` is the measurement itself, returning the numbers; ``perf.py``
calls it for its "time to the first comparison" rows.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bat_core import grid
from bat_core.base.progress import Cancelled
from bat_core.config import (
    DEFAULT_APP_SEEDS,
    DEFAULT_LAMBDA_GRID,
    CorpusConfig,
    DistillConfig,
    StudentConfig,
    TeacherConfig,
)
from bat_core.data.corpus import load_corpus
from bat_core.training.cache import Cache
from bat_core.training.estimate import estimate


class _Landing:
    """Watches a cache's run folder from a thread: when each run appeared (runs are saved as their stack finishes)
    and whether the first look (a baseline and a BAT run of ``first_seed``) is on disk."""

    def __init__(self, cache: Path, first_seed: int, clock: Callable[[], float], start: float,
                 say: Callable[[str], None] | None) -> None:
        self.cache, self.first_seed, self.clock, self.start, self.say = cache, first_seed, clock, start, say
        self.landed: dict[str, float] = {}  # run key → seconds after the start when its run.json appeared
        # run key → (λ, seed), read when it appeared: the early look's run is moved to another key later
        self.what: dict[str, tuple[float, int]] = {}
        self.looked, self.stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        store = Cache(self.cache).runs
        while not self.stop.wait(0.2):
            for f in Path(self.cache, "runs").glob("*/run.json"):
                if f.parent.name not in self.landed:
                    self.landed[f.parent.name] = self.clock() - self.start
                    run = store.load(f.parent.name)
                    if run is not None:
                        self.what[f.parent.name] = (run.lam, run.seed)
            # a baseline (λ = 0) and a BAT run (λ > 0) of the first seed
            mine = {lam > 0 for lam, seed in self.what.values() if seed == self.first_seed}
            if mine == {False, True} and not self.looked.is_set():
                self.looked.set()
                if self.say:
                    self.say(f"{self.clock() - self.start:6.1f} s  first look on disk (a baseline and a BAT run of "
                             f"seed {self.first_seed})")


def measure(corpus_name: str = "demo", topics: int = 20, seeds: int = DEFAULT_APP_SEEDS, epochs: int | None = None,
            max_docs: int | None = None, device: str = "auto", say: Callable[[str], None] | None = print,
            clock: Callable[[], float] = time.perf_counter, first_look_only: bool = False) -> dict[str, Any]:
    """The app's grid (``DEFAULT_LAMBDA_GRID`` × ``seeds``, default teacher, γ chosen on dev data) from an empty
    cache, through ``grid.execute``: seconds from the start of the execution to the first look (the first seed's
    baseline and a BAT run on disk), to the first seed's whole λ curve and to the end, next to the estimate made
    before the start. ``epochs`` None is the student's default; ``max_docs`` cuts the corpus; ``say`` hears one line
    per step; ``clock`` gives the seconds (perf.py passes one that leaves out time its process was stopped);
    ``first_look_only`` cancels the job once the first look is on disk (the later figures are then NaN)."""
    t0, load_start = clock(), os.getloadavg()[0]
    corpus = load_corpus(corpus_name, CorpusConfig(max_docs=max_docs) if max_docs else None)
    student = StudentConfig(n_topics=topics, device=device, **({"epochs": epochs} if epochs else {}))
    plan = grid.plan(corpus, TeacherConfig(device=device), student, DistillConfig(), DEFAULT_LAMBDA_GRID,
                     grid.seed_list(seeds))
    first_seed = plan.members[0].seed
    seed_done: list[float] = []  # when each of the first seed's grid runs was reported
    teacher: list[float] = []  # when the teacher was ready
    with tempfile.TemporaryDirectory(prefix="bat-timeline-") as cache:
        est = estimate(plan, Path(cache))
        prepare = clock() - t0  # reading the corpus, planning, estimating
        if say:
            say(f"{prepare:6.1f} s  {est.sentence()}  (load {load_start:.1f})")
        start = clock()
        watch = _Landing(Path(cache), first_seed, clock, start, say)

        def step(s: grid.Step) -> None:
            now = clock() - start
            if say:
                say(f"{now:6.1f} s  {s.label}{' (cached)' if s.cached else ''}")
            if s.member is None and s.label == "teacher":
                teacher.append(now)
            if s.member is not None and s.member.seed == first_seed:
                seed_done.append(now)

        watch.thread.start()
        try:
            result = grid.execute(plan, Path(cache), on_step=step,
                                  should_stop=watch.looked.is_set if first_look_only else None)
        except Cancelled:
            result = None
        finally:
            watch.stop.set()
            watch.thread.join()
        total = clock() - start
        landed, what = watch.landed, watch.what
        store = Cache(Path(cache)).runs
        for f in Path(cache, "runs").glob("*/run.json"):  # any saved in the watcher's last 0.2 s
            if f.parent.name not in landed and (run := store.load(f.parent.name)) is not None:
                landed[f.parent.name], what[f.parent.name] = total, (run.lam, run.seed)
    mine = [(t, what[k][0]) for k, t in landed.items() if k in what and what[k][1] == first_seed]
    base = min((t for t, lam in mine if lam == 0), default=float("nan"))
    bat = min((t for t, lam in mine if lam > 0), default=float("nan"))
    return {"corpus": corpus_name, "docs": corpus.n_docs, "topics": topics, "epochs": student.epochs,
            "lambdas": len(DEFAULT_LAMBDA_GRID), "seeds": seeds, "device": device, "prepare_s": prepare,
            "teacher_s": teacher[0] if teacher else float("nan"), "first_look_s": max(base, bat),
            "first_curve_s": max(seed_done, default=float("nan")), "total_s": total if result else float("nan"),
            "grid_runs": len(result.runs) if result else len(plan.members),
            "runs_trained": len(landed), "first_seed_runs": len(mine), "estimate_s": est.total_s,
            "estimate_high_s": est.high_s, "estimate_runs": est.runs, "estimate_runs_high": est.runs_high,
            "estimate_first_look_s": est.first_look_s,
            "first_seed": first_seed, "load_start": load_start, "load_end": os.getloadavg()[0]}


def summary(m: dict[str, Any]) -> str:
    """The numbers of :func:`measure` as one line."""
    return (f"first look (seed {m['first_seed']}: a baseline and a BAT run on disk): {m['first_look_s']:.0f} s "
            f"(estimated {m.get('estimate_first_look_s', float('nan')):.0f} s); the "
            f"first seed's λ curve complete: {m['first_curve_s']:.0f} s; all {m['grid_runs']} grid runs: "
            f"{m['total_s']:.0f} s (estimated {m['estimate_s']:.0f} s, up to {m['estimate_high_s']:.0f} s); "
            f"{m['first_seed_runs']} runs of the first seed saved ({m['runs_trained']} in all); load "
            f"{m['load_start']:.1f} → {m['load_end']:.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="demo")
    p.add_argument("--topics", type=int, default=20)
    p.add_argument("--seeds", type=int, default=DEFAULT_APP_SEEDS)
    p.add_argument("--epochs", type=int, default=None, help="student epochs (default: the app's)")
    p.add_argument("--max-docs", type=int, default=None, help="cut the corpus to its first N documents")
    p.add_argument("--first-look-only", action="store_true", help="stop once the first look is on disk")
    args = p.parse_args(argv)
    m = measure(args.corpus, args.topics, args.seeds, args.epochs, args.max_docs,
                say=lambda line: print(line, flush=True), first_look_only=args.first_look_only)
    print(summary(m))
    return 0


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
