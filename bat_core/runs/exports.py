"""What a user can download: a run's topics (CSV), its document–topic proportions (CSV), its settings and metrics
(JSON), and an aligned baseline/BAT comparison (CSV). Pure functions returning bytes, so the app, a notebook and
tests get the same files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..base.io import dumps_json
from ..data.corpus import Corpus
from .store import Run


def file_tag(run: Run, corpus: Corpus) -> str:
    """The part of a file name that says which run it came from."""
    return f"{corpus.name}-lam{run.lam:g}-seed{run.seed}-{run.key[:8]}"


def topics_csv(run: Run) -> bytes:
    npmi = run.metrics.get("test_npmi_per_topic") or [np.nan] * run.n_topics
    df = pd.DataFrame({"topic": np.arange(1, run.n_topics + 1), "test_npmi": npmi,
                       "top_words": [" ".join(t) for t in run.topics]})
    return df.to_csv(index=False).encode()


def _theta_frame(theta: np.ndarray) -> pd.DataFrame:
    """One row per document: ``doc`` (its position) and ``topic_1`` … ``topic_K`` (6 decimals)."""
    df = pd.DataFrame(np.round(np.asarray(theta, dtype=np.float64), 6),
                      columns=[f"topic_{k + 1}" for k in range(theta.shape[1])])
    df.insert(0, "doc", np.arange(len(df)))
    return df


def theta_csv(theta: np.ndarray) -> bytes:
    """Document–topic proportions of new documents (``bat transform``), in the order they were given."""
    return _theta_frame(theta).to_csv(index=False).encode()


def doc_topic_csv(run: Run, corpus: Corpus) -> bytes:
    split = np.empty(corpus.n_docs, dtype=object)
    for name, idx in corpus.splits.items():
        split[idx] = name
    df = _theta_frame(run.theta)
    df.insert(1, "split", split)
    return df.to_csv(index=False).encode()


def run_json(run: Run) -> bytes:
    d = run.summary()
    d["history"] = run.history
    return dumps_json(d, indent=2).encode()


def aligned_pairs_csv(base: Run, bat: Run, pairs: list[tuple[int, int, float]]) -> bytes:
    """One row per aligned topic pair (``evaluation.align.align_topics``), with both sides' words and test NPMI."""
    npmi_a = base.metrics.get("test_npmi_per_topic") or [np.nan] * base.n_topics
    npmi_b = bat.metrics.get("test_npmi_per_topic") or [np.nan] * bat.n_topics
    df = pd.DataFrame([{"pair": n, "baseline_topic": i + 1, "baseline_npmi": npmi_a[i],
                        "baseline_words": " ".join(base.topics[i]), "jsd": d, "bat_topic": j + 1,
                        "bat_npmi": npmi_b[j], "bat_words": " ".join(bat.topics[j])}
                       for n, (i, j, d) in enumerate(pairs, 1)])
    return df.to_csv(index=False).encode()
