"""Downstream classification on θ: separable topics classify perfectly, uninformative ones at chance."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from bat_core.base.errors import BatError
from bat_core.evaluation.downstream import check_categories, classify, evaluate_runs, labelled_rows


def _theta(y: np.ndarray, signal: float, rng: np.random.Generator, k: int = 6) -> np.ndarray:
    """θ on the simplex whose topic y (mod K) gets ``signal`` extra mass."""
    a = rng.gamma(1.0, size=(len(y), k))
    a[np.arange(len(y)), y % k] += signal
    return a / a.sum(axis=1, keepdims=True)


def test_separable_topics_classify_perfectly_and_noise_does_not():
    rng = np.random.default_rng(0)
    y_tr, y_te = rng.integers(3, size=300), rng.integers(3, size=150)
    good = classify(_theta(y_tr, 20, rng), y_tr, _theta(y_te, 20, rng), y_te)
    assert good == {"accuracy": 1.0, "macro_f1": 1.0}
    noise = classify(_theta(y_tr, 0, rng), y_tr, _theta(y_te, 0, rng), y_te)
    assert noise["accuracy"] < 0.5 and noise["macro_f1"] < 0.5  # chance is 1/3
    assert classify(_theta(y_tr, 20, rng), y_tr, _theta(y_te, 20, rng), y_te, random_state=1)["accuracy"] == 1.0


def test_macro_f1_weighs_a_small_class_like_a_big_one():
    rng = np.random.default_rng(1)
    # class 2 is rare and indistinguishable from class 0: accuracy stays high, macro-F1 drops
    y_tr = np.r_[np.zeros(200, int), np.ones(200, int), np.full(20, 2)]
    y_te = np.r_[np.zeros(100, int), np.ones(100, int), np.full(10, 2)]
    th = lambda y: _theta(np.where(y == 2, 0, y), 20, rng)
    s = classify(th(y_tr), y_tr, th(y_te), y_te)
    assert s["accuracy"] > 0.9 and s["macro_f1"] < 0.8


def test_one_label_is_an_error():
    with pytest.raises(BatError, match="fewer than two labels"):
        classify(np.eye(3), ["a", "a", "a"], np.eye(3), ["a", "b", "a"])


@dataclass
class _Corpus:
    splits: dict
    counts: np.ndarray
    name: str = "synthetic"


@dataclass
class _Run:
    theta: np.ndarray
    key: str = "k"
    lam: float = 0.5
    seed: int = 7
    config: dict = field(default_factory=lambda: {"student": {"student": "prodlda"}})


def test_evaluate_runs_uses_the_splits_and_skips_unknown_labels():
    rng = np.random.default_rng(2)
    n = 200
    y = rng.integers(2, size=n)
    labels = [None if i % 10 == 0 else int(v) for i, v in enumerate(y)]
    corpus = _Corpus({"train": np.arange(0, 150), "test": np.arange(150, n)}, np.zeros((n, 3)))
    assert 150 not in labelled_rows(labels, corpus.splits["test"]) and len(labelled_rows(labels, np.arange(n))) == 180
    theta = _theta(y, 20, rng)
    theta[150:] = theta[150:][:, [1, 0, 2, 3, 4, 5]]  # topics 0 and 1 swapped in the test split only: if the
    # classifier is fitted on the train rows and scored on the test rows, it gets nearly every test document wrong
    (row,) = evaluate_runs(corpus, [_Run(theta)], labels)
    assert row["n_train"] == 135 and row["n_test"] == 45 and row["student"] == "prodlda" and row["lam"] == 0.5
    assert row["accuracy"] < 0.1
    (row,) = evaluate_runs(corpus, [_Run(_theta(y, 20, rng))], labels)
    assert row["accuracy"] == 1.0


def test_evaluate_runs_refuses_a_corpus_without_labels(demo_corpus):
    with pytest.raises(BatError, match="labels"):
        evaluate_runs(demo_corpus, [])


def test_labels_that_cannot_be_classified_fail_before_training():
    corpus = _Corpus(splits={"train": np.arange(8), "dev": np.array([8]), "test": np.array([9])},
                     counts=np.ones((10, 3)))
    with pytest.raises(BatError, match="identifier"):
        check_categories([f"id{i}" for i in range(10)], corpus, "column 'id'")
    with pytest.raises(BatError, match="fewer than two"):
        check_categories(["x"] * 10, corpus, "column 'label'")
    check_categories(["a", "b"] * 5, corpus, "column 'label'")  # categories that repeat: fine
    # no labelled test document: said before training (it used to fail after it, with no summary written)
    with pytest.raises(BatError, match="none of the 1 test documents has a label"):
        check_categories(["a", "b"] * 4 + ["a", None], corpus, "column 'label'")


def test_a_folder_named_like_a_labelled_corpus_is_not_given_its_labels(tmp_path, monkeypatch):
    """A folder ./mini20ng is read as the user's documents; it was then matched against the installed corpus's
    labels (none set) and the summary failed after every run had trained."""
    from teacher_fixtures import topic_docs

    from bat_core.data.corpus import load_corpus
    from bat_core.evaluation.downstream import source_labels

    (tmp_path / "mini20ng").mkdir()
    docs = topic_docs(40, seed=3)[0]
    for i, d in enumerate(docs):
        (tmp_path / "mini20ng" / f"{i}.txt").write_text(d)
    monkeypatch.chdir(tmp_path)
    corpus = load_corpus("mini20ng")
    assert corpus.n_docs <= len(docs) and corpus.texts[0] in docs  # the folder, not the installed posts
    assert source_labels("mini20ng", corpus) is None
