"""Does screening ``auto`` on the first window of every document choose the teacher the full encoding chose?

``auto`` chooses among neighbours by shared words (TF-IDF), by the encoder's embeddings, and both, by dev
perplexity. Since rule 2 (``config.AUTO_CHOICE_RULE``) it encodes only the first window of every document to choose,
and the other windows only when a kind that uses the encoder wins there. This script builds, per corpus, in two
fresh caches:

* the full choice (the rule before): every window encoded (a ``transformer`` teacher, whose embeddings the ``auto``
  build then reads from the cache), then ``auto`` on those embeddings;
* the screened choice (today's ``auto``, from an empty cache);

and prints both choices, their dev perplexities and the seconds each spent. Nothing is trained.

    python benchmarks/teacher_screen.py                       # demo, mini20ng, bbcnews, newsarticles
    python benchmarks/teacher_screen.py --corpora demo --out /tmp/screen.md
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bat_core.config import TeacherConfig
from bat_core.data.corpus import load_corpus
from bat_core.grid import get_teacher

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ("demo", "mini20ng", "bbcnews", "newsarticles")


def _ppl(meta: dict) -> str:
    return ", ".join(f"{c['teacher']} {c['dev_perplexity']:,.0f}" for c in
                     sorted(meta["candidates"], key=lambda c: c["dev_perplexity"]))


def compare(name: str) -> dict:
    corpus = load_corpus(name)
    with tempfile.TemporaryDirectory() as full_dir, tempfile.TemporaryDirectory() as screen_dir:
        t0 = time.time()
        encoded = get_teacher(corpus, TeacherConfig(kind="transformer"), Path(full_dir))  # every window
        t1 = time.time()
        full = get_teacher(corpus, TeacherConfig(), Path(full_dir))  # auto on the cached full embeddings
        t2 = time.time()
        screened = get_teacher(corpus, TeacherConfig(), Path(screen_dir))  # auto from an empty cache
        t3 = time.time()
    return {"corpus": name, "docs": corpus.n_docs, "windows": encoded.meta.get("windows"),
            "screen_windows": screened.meta.get("windows"), "full_choice": full.meta["teacher_kind"],
            "screened_choice": screened.meta["teacher_kind"], "full_s": (t1 - t0) + (t2 - t1),
            "screened_s": t3 - t2, "full_ppl": _ppl(full.meta), "screened_ppl": _ppl(screened.meta),
            "screen_then_full": screened.meta.get("screen_choice")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated installed corpora")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "teacher-screen.md")
    args = p.parse_args(argv)
    lines = ["| corpus | documents | windows: all / first | full choice (rule 1) | screened choice (rule 2) | "
             "same | seconds: full / screened | dev perplexity, full | dev perplexity, screened |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in [c.strip() for c in args.corpora.split(",") if c.strip()]:
        r = compare(name)
        same = "yes" if r["full_choice"] == r["screened_choice"] else "**no**"
        lines.append(f"| {name} | {r['docs']:,} | {r['windows']:,} / {r['screen_windows']:,} | {r['full_choice']} | "
                     f"{r['screened_choice']} | {same} | {r['full_s']:.0f} / {r['screened_s']:.0f} | "
                     f"{r['full_ppl']} | {r['screened_ppl']} |")
        print(lines[-1], flush=True)
        args.out.write_text("\n".join(lines) + "\n")  # what is measured so far survives an interrupted run
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
