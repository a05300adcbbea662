"""Short-text corpora made from installed long ones, to test where the transformer teacher contributes (tuning.md,
"Short documents"): the lead of each article, as news snippets, headline feeds or abstracts look.

    python benchmarks/leads.py /tmp/leads      # bbcleads, newsleads, bbc60, bbc120 (.txt, a document per line)
    python benchmarks/quality.py --corpus /tmp/leads/bbcleads.txt --reference bbcnews --tag leads5

* ``bbcleads``: BBC News, the title and the first paragraph of each article (about 27 words).
* ``newsleads``: NewsArticles, the first 30 words of each article (NewsArticles has no titles).
* ``bbc60``, ``bbc120``: the first 60 / 120 words of each BBC News article: how the effect changes with length.

The full articles serve as the external NPMI reference (``--reference``): in-domain test co-occurrence on documents
of 27 words is sparse.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bat_core.data import datasets  # noqa: E402


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


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    corpora = [("bbcleads", bbc_leads()), ("newsleads", news_leads())]
    # the length sweep: the first N words of each BBC article (title included)
    corpora += [(f"bbc{n}", first_words(datasets.load_bbcnews(), n)) for n in (60, 120)]
    for name, docs in corpora:
        (out / f"{name}.txt").write_text("\n".join(docs), encoding="utf-8")
        mean = sum(len(d.split()) for d in docs) / len(docs)
        print(f"{out / name}.txt: {len(docs)} documents, {mean:.1f} words each")


if __name__ == "__main__":
    main()
