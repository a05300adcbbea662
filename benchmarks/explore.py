"""Quick paired comparisons for the quality search (benchmarks/results/tuning.md records what they found).

    python benchmarks/explore.py --corpus demo --seeds 3 --arm "lam=0.5" --arm "lam=0.5,temperature=0.5" \
        [--teacher "cross_fit_folds=5"] [--student "epochs=300"]

Every arm is trained with the same seeds as the λ = 0 baseline and reported as a paired difference in test NPMI.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bat_core.config import CorpusConfig, DistillConfig, StudentConfig, TeacherConfig
from bat_core.data.corpus import load_corpus
from bat_core.grid import execute, get_teacher, plan, seed_list

ROOT = Path(__file__).resolve().parents[1]


def _kv(s: str) -> dict:
    out = {}
    for part in filter(None, s.split(",")):
        k, v = part.split("=")
        for cast in (int, float):
            try:
                v = cast(v)
                break
            except ValueError:
                pass
        out[k.strip()] = None if v == "None" else v
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="demo")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--topics", type=int, default=None)
    p.add_argument("--arm", action="append", default=[])
    p.add_argument("--teacher", default="")
    p.add_argument("--student", default="")
    p.add_argument("--corpus-opts", default="")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".bat_cache")
    a = p.parse_args()
    corpus = load_corpus(a.corpus, CorpusConfig(**_kv(a.corpus_opts)))
    k = a.topics or (50 if a.corpus == "newsarticles" else 20)
    scfg = replace(StudentConfig(n_topics=k), **_kv(a.student))
    tcfg = TeacherConfig(**_kv(a.teacher))
    t = time.time()
    teacher = get_teacher(corpus, tcfg, a.cache_dir)
    print(f"teacher {time.time() - t:.0f}s", json.dumps({k: round(v, 1) for k, v in teacher.meta.items()
                                                          if "perplexity" in k}))
    seeds = seed_list(a.seeds)
    base = execute(plan(corpus, tcfg, scfg, DistillConfig(), [0.0], seeds), a.cache_dir).runs
    b = np.array([r.metrics["test_npmi"] for r in base])
    print(f"baseline test NPMI {b.mean():.4f} ± {b.std(ddof=1):.4f}  TU {np.mean([r.metrics['tu'] for r in base]):.3f}")
    for arm in a.arm:
        d = DistillConfig(**_kv(arm))
        t = time.time()
        rs = execute(plan(corpus, tcfg, scfg, d, [d.lam], seeds), a.cache_dir).runs
        v = np.array([r.metrics["test_npmi"] for r in rs])
        diff = v - b
        print(f"{arm:45s} NPMI {v.mean():.4f} ± {v.std(ddof=1):.4f}  Δ {diff.mean():+.4f} ± {diff.std(ddof=1):.4f} "
              f"({100 * diff.mean() / b.mean():+.1f}%) won {int((diff > 0).sum())}/{len(seeds)}  "
              f"TU {np.mean([r.metrics['tu'] for r in rs]):.3f}  {time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
