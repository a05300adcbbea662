"""Screen distillation settings on a few seeds: dev NPMI, test NPMI, topic uniqueness and the per-epoch history.

Every arm is a ``DistillConfig`` given as JSON; all arms train together as one stacked grid (``fit_students``) with
the lexical teacher (k and ε chosen on dev perplexity, as the engine does). One JSON line per run is appended to the
output file, with the run's history (dev NPMI and TU per epoch), so a later table can pair runs by seed.

    python benchmarks/screen.py newsarticles --topics 50 --epochs 500 --seeds 1 \\
        --arms '[{"lam": 0}, {"lam": 0.5, "background_correction": 0.5, "fade": 1}]' --out /tmp/screen.jsonl

Used for "fading the teacher" in benchmarks/results/tuning.md. ``--reference`` also scores every run against an
outside reference, the training split and the whole corpus; ``--score-on train`` chooses each run's checkpoint on the
training split (short texts: which criterion tracks the reference, docs/results.md section 3b). A screen is for
choosing what to run properly: the claims there come from all five seeds, paired, and from ``quality.py``, which
applies the engine's own dev rule.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from bat_core.config import DistillConfig, StudentConfig, TeacherConfig
from bat_core.data.corpus import load_corpus, vectorize
from bat_core.data.readers import read_documents
from bat_core.evaluation.coherence import coherence
from bat_core.evaluation.metrics import npmi_per_topic, top_words
from bat_core.grid import get_teacher, seed_list
from bat_core.training.trainer import fit_students

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus", help="an installed corpus name or a file path")
    p.add_argument("--arms", required=True, help="JSON list of DistillConfig settings, one per arm")
    p.add_argument("--topics", type=int, default=20)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seeds", type=int, default=1, help="the first N seeds of the shared scheme")
    p.add_argument("--skip-seeds", type=int, default=0, help="leave out the first N of them (already screened)")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".bat_cache")
    p.add_argument("--teacher", default="lexical", help="the teacher kind (lexical, transformer, auto, …)")
    p.add_argument("--reference", default=None,
                   help="an outside reference (a corpus name or a file) to score every run's topics against too")
    p.add_argument("--score-on", choices=("dev", "train"), default="dev",
                   help="train: choose each run's checkpoint (and its dev NPMI) on the training split instead of the "
                        "dev split (an experiment for short texts, where the dev split sees few top-word pairs)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    arms = json.loads(args.arms)
    seeds = seed_list(args.seeds)[args.skip_seeds:]
    corpus = load_corpus(args.corpus)
    teacher = get_teacher(corpus, TeacherConfig(kind=args.teacher), args.cache_dir)
    ref = vectorize(read_documents(args.reference)[1], corpus.config, corpus.vocab) if args.reference else None
    train = corpus.split_counts("train")
    if args.score_on == "train":
        corpus = replace(corpus, splits={**corpus.splits, "dev": corpus.splits["train"]})
    members = [(StudentConfig(n_topics=args.topics, epochs=args.epochs, seed=s), DistillConfig(**a))
               for a in arms for s in seeds]

    def on_run(i: int, run) -> None:  # noqa: ANN001 (a bat_core Run)
        row = {"arm": arms[i // len(seeds)], "seed": members[i][0].seed, "score_on": args.score_on,
               **{k: run.metrics[k] for k in ("dev_npmi", "test_npmi", "tu", "best_epoch")}}
        top = top_words(run.beta, int(run.config["student"].get("npmi_top_n", 10)))
        scores = coherence(top, corpus.split_counts("test"), corpus.counts, ref)
        row |= {"train_npmi": float(npmi_per_topic(top, train).mean()),
                **{k: scores[k] for k in ("corpus_npmi", "reference_npmi", "top_word_df", "test_pairs_seen")}}
        print(json.dumps(row), flush=True)
        with args.out.open("a") as f:
            f.write(json.dumps({**row, "history": run.history}) + "\n")

    t0 = time.time()
    fit_students(corpus, members, teacher, on_run=on_run)
    print(f"{len(members)} runs in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
