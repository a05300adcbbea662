"""Coherence a user can trust: NPMI against the test split, the whole corpus and an outside reference, side by side,
with a plain rule for which one to read.

NPMI scores a topic by how often its top words occur in the same documents of a reference. On a test split of a few
hundred short texts most top-word pairs never occur together at all: they score 0, the topic scores are tiny
(0.02-0.05) and the sign of a difference between two models flips with the reference (issue #25: one-sentence film
reviews, test NPMI +28 % for BAT, −1 % against the full reviews). So every score says how many of its pairs it saw,
and when the test split saw fewer than half, the larger reference is the one to read.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .metrics import NpmiScorer

MIN_PAIRS_SEEN = 0.5  # below this share of top-word pairs seen together, a reference is too sparse to score on


def coherence(top_idx: np.ndarray, test: sp.spmatrix, corpus: sp.spmatrix,
              reference: sp.spmatrix | None = None) -> dict[str, float | bool | None]:
    """NPMI of the topics ``top_idx`` (K×n word ids) against the test split, the whole corpus and (if given) an
    outside reference over the same vocabulary; for each, the share of top-word pairs it saw together; the top words'
    mean document frequency in the corpus; and ``test_sparse``: the test split saw fewer than
    :data:`MIN_PAIRS_SEEN` of the pairs (then read the corpus or the reference)."""
    top_idx = np.asarray(top_idx)
    words = np.unique(top_idx)
    out: dict[str, float | bool | None] = {}
    for name, counts in (("test", test), ("corpus", corpus), ("reference", reference)):
        if counts is None or counts.shape[0] == 0:
            out[f"{name}_npmi"] = out[f"{name}_pairs_seen"] = None
            continue
        scorer = NpmiScorer(counts, words=words)
        out[f"{name}_npmi"] = float(scorer.per_topic(top_idx).mean())
        out[f"{name}_pairs_seen"] = scorer.pairs_seen(top_idx)
        if name == "corpus":
            out["top_word_df"] = scorer.doc_frequency(top_idx)
    seen = out["test_pairs_seen"]
    out["test_sparse"] = seen is None or seen < MIN_PAIRS_SEEN
    return out


def which_to_read(test_sparse: bool, reference_pairs_seen: float | None, corpus_pairs_seen: float | None = None
                  ) -> str:
    """The NPMI to read: the test split's when it saw enough pairs, else the outside reference's (None: there is
    none) unless it saw fewer than ``MIN_PAIRS_SEEN`` of the pairs and fewer than the whole corpus did, else the
    whole corpus's. Why the last condition: three French lines given as a reference for English topics saw 1 % of the
    pairs, and the warning sent the reader to that score instead of the corpus's 31 %."""
    if not test_sparse:
        return "test"
    if reference_pairs_seen is None:
        return "corpus"
    if reference_pairs_seen >= MIN_PAIRS_SEEN or corpus_pairs_seen is None or reference_pairs_seen >= corpus_pairs_seen:
        return "reference"
    return "corpus"
