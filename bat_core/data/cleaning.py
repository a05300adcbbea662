"""Cleaning a list of documents before it is vectorised: boilerplate (lines and word runs repeated across many
documents: share buttons, bylines, legal footers) removed, and copies of one text dropped.

Why it matters here: a repeated line is a word pattern shared by many documents, so a nearest-neighbour teacher
would call those documents neighbours and every topic would learn the footer; two copies of one article would be each
other's nearest neighbour (the teacher's target would carry the document's own words) and be counted twice by NPMI.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

_WS = re.compile(r"\s+")


def remove_boilerplate(docs: list[str], min_frac: float = 0.01, min_docs: int = 5, run_len: int = 8
                       ) -> tuple[list[str], dict]:
    """Drop lines, and runs of ``run_len``+ words, that repeat verbatim across many documents.

    Share buttons, bylines, licence footers and navigation text are repeated across documents of one source; they form
    artefact topics with near-perfect NPMI. A line (or an 8-word run) found in at least ``max(min_docs, min_frac·N)``
    documents is removed. Returns the cleaned documents and what was removed.
    """
    n = len(docs)
    threshold = max(min_docs, int(np.ceil(min_frac * n)))
    stats = {"boilerplate_threshold_docs": threshold, "boilerplate_docs_touched": 0, "boilerplate_words_removed": 0}
    if n < threshold:
        return docs, stats
    # 1) whole lines
    line_df: Counter[str] = Counter()
    doc_lines = []
    for d in docs:
        lines = [_WS.sub(" ", ln).strip() for ln in d.splitlines()]
        doc_lines.append(lines)
        line_df.update({ln for ln in lines if len(ln) >= 10})
    bad_lines = {ln for ln, c in line_df.items() if c >= threshold}
    # 2) word runs (shingles), on what remains
    doc_words = []
    for lines in doc_lines:
        doc_words.append([(" ".join(ln for ln in lines if ln not in bad_lines)).split()])
    shingle_df: Counter[int] = Counter()
    for (words,) in doc_words:
        if len(words) >= run_len:
            shingle_df.update({hash(tuple(words[i:i + run_len])) for i in range(len(words) - run_len + 1)})
    bad_shingles = {h for h, c in shingle_df.items() if c >= threshold}
    out = []
    touched = removed = 0
    for d, (words,) in zip(docs, doc_words):
        n_before = len(d.split())
        if bad_shingles and len(words) >= run_len:
            keep = np.ones(len(words), dtype=bool)
            for i in range(len(words) - run_len + 1):
                if hash(tuple(words[i:i + run_len])) in bad_shingles:
                    keep[i:i + run_len] = False
            words = [w for w, k in zip(words, keep) if k]
        if len(words) != n_before:
            touched += 1
            removed += n_before - len(words)
            out.append(" ".join(words))
        else:
            out.append(d)
    stats.update(boilerplate_docs_touched=touched, boilerplate_words_removed=removed,
                 boilerplate_lines=len(bad_lines), boilerplate_runs=len(bad_shingles))
    return out, stats


# Invisible format characters (soft hyphen, zero-width space and joiners, word joiner, a byte-order mark inside the
# text, bidirectional marks): inside a word they split it in two, and "astro\u200bnaut" made the fake words "astro"
# and "naut" of the vocabulary. Removed before tokenising, from the corpus and from new texts alike.
_FORMAT_CHARS = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")


def strip_format_chars(text: str) -> str:
    """``text`` with NUL bytes as spaces and without invisible format characters (``_FORMAT_CHARS``), so that the
    words they sat in stay whole: what the corpus's documents and new texts alike go through before tokenising."""
    return _FORMAT_CHARS.sub("", text.replace("\x00", " "))


_NOT_WORD = re.compile(r"[\W_]+")


def duplicate_key(doc: str) -> str:
    """What two copies of one text share: its words, lower-cased, without punctuation or spacing."""
    return _NOT_WORD.sub(" ", doc.lower()).strip()


def drop_duplicates(docs: list[str]) -> list[str]:
    """Keep the first of every group of documents that are the same text up to case, punctuation and spacing.

    Runs after boilerplate removal: two copies of an article that differ only in a share line or a byline are the
    same text once those are gone. Twins left in would be each other's nearest neighbour in the knn teacher (its
    target would carry the document's own words) and would be counted twice by NPMI.
    """
    seen: set[str] = set()
    unique = []
    for d in docs:
        k = duplicate_key(d)
        if not k or k not in seen:  # a text with no word at all is dropped later, as empty after vectorising
            seen.add(k)
            unique.append(d)
    return unique
