"""Downstream check: how well a run's document-topic proportions θ predict a labelled corpus's categories.

Topic coherence (NPMI) says whether topics read well; this says whether θ keeps what distinguishes documents. A
multinomial logistic regression is trained on θ of the train split and scored on the test split (accuracy and
macro-F1, the latter so that a small class counts as much as a big one).

θ is standardised first (the scaler is fitted on the train split only): a K = 20 θ has entries around 0.05, and on
such small features a fixed L2 penalty (C = 1) mostly measures K rather than the topics; after scaling, the same C
means the same thing for any K and any student. The fit is deterministic (lbfgs, fixed ``random_state``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..base.errors import BatError
from ..data.corpus import Corpus
from ..data.datasets import LABELLED, labels_for, match_labels
from ..data.readers import installed_name, parse_labelled, read_bytes

MAX_ITER = 5000  # lbfgs on ≤ 1,000 standardised features converges well before this; the default 100 may not


def classify(theta_train: np.ndarray, y_train: Sequence[Any], theta_test: np.ndarray, y_test: Sequence[Any],
             random_state: int = 0) -> dict[str, float]:
    """Fit a logistic regression on (θ_train, y_train); accuracy and macro-F1 on (θ_test, y_test)."""
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(np.unique(y_train)) < 2:
        raise BatError("the training documents carry fewer than two labels: nothing to classify")
    if len(y_test) == 0:
        raise BatError("no labelled test documents")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER, random_state=random_state))
    clf.fit(np.asarray(theta_train, dtype=np.float64), y_train)
    pred = clf.predict(np.asarray(theta_test, dtype=np.float64))
    return {"accuracy": float(accuracy_score(y_test, pred)),
            "macro_f1": float(f1_score(y_test, pred, average="macro", labels=np.unique(np.r_[y_train, y_test]),
                                       zero_division=0))}


def labelled_rows(labels: Sequence[Any], rows: np.ndarray) -> np.ndarray:
    """The corpus rows among ``rows`` whose label is known (not None)."""
    return np.array([r for r in np.asarray(rows) if labels[r] is not None], dtype=np.int64)


def corpus_labels(corpus: Corpus) -> list[Any]:
    """A label per corpus document (None where unknown); a BatError for a corpus without labels."""
    labels = labels_for(corpus)  # raises a BatError naming the labelled corpora for any other corpus
    if len(labels) != corpus.counts.shape[0]:
        raise BatError(f"{len(labels)} labels for {corpus.counts.shape[0]} documents")
    return labels


def check_categories(labels: Sequence[Any], corpus: Corpus, what: str) -> None:
    """A BatError, before any training, for labels that cannot be classified: no labelled test document, fewer than
    two categories among the training documents, or so many that they look like identifiers (more than half the
    documents' count)."""
    values = [labels[r] for r in labelled_rows(labels, corpus.splits["train"])]
    if len(labelled_rows(labels, corpus.splits["test"])) == 0:
        raise BatError(f"{what}: none of the {len(corpus.splits['test']):,} test documents has a label, so there is "
                       "nothing to score θ on; label more documents or leave the label column out")
    n = len(set(values))
    if n < 2:
        raise BatError(f"{what} has fewer than two distinct labels among the training documents: nothing to classify")
    if n > len(values) / 2:
        raise BatError(f"{what} has {n:,} distinct values among {len(values):,} training documents: that looks like "
                       "an identifier, not categories that repeat; give a column of categories")


def evaluate_runs(corpus: Corpus, runs: Sequence[Any], labels: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Accuracy and macro-F1 of each run's θ (N×K, corpus row order), with its λ, seed and student kind.

    ``labels`` (one per corpus document, None = unknown) default to :func:`corpus_labels`; documents without a
    label are left out of both splits.
    """
    labels = corpus_labels(corpus) if labels is None else list(labels)
    train = labelled_rows(labels, corpus.splits["train"])
    test = labelled_rows(labels, corpus.splits["test"])
    y_train, y_test = [labels[r] for r in train], [labels[r] for r in test]
    out = []
    for run in runs:
        theta = np.asarray(run.theta)
        if theta.shape[0] != len(labels):
            raise BatError(f"run {run.key} has θ for {theta.shape[0]} documents, the corpus has {len(labels)}")
        scores = classify(theta[train], y_train, theta[test], y_test)
        out.append({"key": run.key, "lam": run.lam, "seed": run.seed,
                    "student": run.config["student"].get("student", "scholar"), "n_train": len(train),
                    "n_test": len(test), **scores})
    return out


def source_labels(source: str | Path, corpus: Corpus, label_column: str | None = None) -> list[Any] | None:
    """A label per document of ``corpus`` built from ``source``: the values of ``label_column`` of a table, or the
    categories of an installed labelled corpus; None when the source has neither (no downstream check)."""
    if label_column:
        if installed_name(source):
            raise BatError(f"--label-column reads a column of a .csv/.tsv/.jsonl/.json file, and {source!r} is an "
                           f"installed corpus; the labelled ones ({', '.join(LABELLED)}) carry their labels already")
        path = Path(source)
        texts, labels = parse_labelled(path.name, read_bytes(path), corpus.config.text_column, label_column)
        matched = match_labels(corpus.texts, texts, labels)
        check_categories(matched, corpus, f"column {label_column!r}")
        return matched
    if installed_name(source) and str(source) in LABELLED:
        labels = labels_for(corpus, str(source))
        check_categories(labels, corpus, f"the {source} categories")  # before training, as a column's are
        return labels
    return None
