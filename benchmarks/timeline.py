"""When each step of a grid lands, from an empty cache: the first look (the first seed's baseline and one BAT run),
the first seed's whole λ curve, and the end, next to the estimate made before it started.

    python benchmarks/timeline.py                         # demo, the app's default grid (11 λ × 3 seeds)
    python benchmarks/timeline.py --corpus newsarticles --topics 50

Prints one line per finished step (seconds since the start) and a summary line. Say the machine's load (uptime)
with the numbers: they move with it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from bat_core import grid
from bat_core.config import DEFAULT_APP_SEEDS, DEFAULT_LAMBDA_GRID, DistillConfig, StudentConfig, TeacherConfig
from bat_core.data.corpus import load_corpus
from bat_core.training.cache import Cache
from bat_core.training.estimate import estimate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="demo")
    p.add_argument("--topics", type=int, default=20)
    p.add_argument("--seeds", type=int, default=DEFAULT_APP_SEEDS)
    args = p.parse_args(argv)
    t0 = time.time()
    corpus = load_corpus(args.corpus)
    plan = grid.plan(corpus, TeacherConfig(), StudentConfig(n_topics=args.topics), DistillConfig(),
                     DEFAULT_LAMBDA_GRID, grid.seed_list(args.seeds))
    first_seed = plan.members[0].seed
    landed: dict[str, float] = {}  # run key → seconds after the start when its run.json appeared
    seed_done: list[float] = []  # when each of the first seed's grid runs was reported
    with tempfile.TemporaryDirectory() as cache:
        est = estimate(plan, Path(cache))
        print(f"{time.time() - t0:6.1f} s  {est.sentence()}  (load {os.getloadavg()[0]:.1f})", flush=True)
        start, stop = time.time(), threading.Event()

        def watch() -> None:  # runs are saved as their stack finishes: the first look is the first pair on disk
            while not stop.wait(0.2):
                for f in Path(cache, "runs").glob("*/run.json"):
                    landed.setdefault(f.parent.name, time.time() - start)

        def step(s: grid.Step) -> None:
            now = time.time() - start
            print(f"{now:6.1f} s  {s.label}{' (cached)' if s.cached else ''}", flush=True)
            if s.member is not None and s.member.seed == first_seed:
                seed_done.append(now)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        result = grid.execute(plan, Path(cache), on_step=step)
        stop.set()
        watcher.join()
        store = Cache(Path(cache)).runs
        kinds = {k: store.load(k) for k in landed}
    total = time.time() - start
    both = [t for k, t in landed.items() if kinds[k] is not None and kinds[k].seed == first_seed]
    base = min((t for k, t in landed.items() if kinds[k] is not None and kinds[k].seed == first_seed
                and kinds[k].lam == 0), default=float("nan"))
    bat = min((t for k, t in landed.items() if kinds[k] is not None and kinds[k].seed == first_seed
               and kinds[k].lam > 0), default=float("nan"))
    print(f"first look (seed {first_seed}: a baseline and a BAT run on disk): {max(base, bat):.0f} s; the first "
          f"seed's λ curve complete: {max(seed_done, default=float('nan')):.0f} s; all {len(result.runs)} grid runs: "
          f"{total:.0f} s (estimated {est.total_s:.0f} s, up to {est.high_s:.0f} s); {len(both)} runs of the first "
          f"seed saved; load {os.getloadavg()[0]:.1f}")
    return 0

if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
