"""An outside reference for coherence: longer in-domain texts uploaded on the Corpus page, counted over the current
corpus's vocabulary and used only to score NPMI on Compare (issue #25), never to train.

The reference is read by the corpus's own reader (``bat_core.data.readers.parse_bytes``, what ``read_documents`` uses
for a file) and counted by ``bat_core.data.corpus.vectorize_reference``, as ``bat fit --reference FILE`` does
(``bat_core.grid.fit``), so the app and the CLI give the same numbers for the same file. Its counts hold one row per
document read (documents without a vocabulary word included, as the CLI's do). It lives in the session under
``keys.REFERENCE`` and belongs to one corpus: a new corpus (another file, other settings) has another vocabulary, so
:func:`forget_unless_for` drops it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import streamlit as st

from bat_core.base.errors import BatError
from bat_core.data.corpus import Corpus, hash_texts, vectorize_reference
from bat_core.data.readers import parse_bytes
from ui import keys
from ui.text import md_escape


@dataclass(frozen=True)
class Reference:
    """An uploaded reference, counted over one corpus's vocabulary."""

    name: str  # the file name, as uploaded
    n_docs: int  # documents read from it
    n_scored: int  # those with at least one word of the corpus's vocabulary
    counts: sp.csr_matrix  # n_docs × the corpus's vocabulary
    corpus_hash: str  # the corpus whose vocabulary counted it
    id: str  # names it in caches: its documents and that corpus

    def line(self) -> str:
        """Which reference is in use, in words (markdown)."""
        scored = "" if self.n_scored == self.n_docs else f", {self.n_scored:,} of them with a word of the vocabulary"
        return f"**{md_escape(self.name)}** ({self.n_docs:,} documents{scored})"


def read(name: str, data: bytes, corpus: Corpus, text_column: str | None = None) -> Reference:
    """The reference in uploaded file ``name`` for ``corpus``; a BatError a person can act on when the file is empty,
    unreadable (binary data, a broken table, …) or shares no word with the corpus's vocabulary."""
    if not data.strip():
        raise BatError(f"{name} is empty; give longer in-domain texts, one document per line (or per row of a table)")
    docs = parse_bytes(name, data, text_column)  # BatError for binary data, broken tables, a missing text column
    counts = vectorize_reference(docs, corpus, name)  # BatError: no document, no word in common
    h = hashlib.sha256(corpus.hash.encode())
    hash_texts(h, docs)
    n_scored = int(np.count_nonzero(np.diff(counts.indptr)))
    return Reference(name, len(docs), n_scored, counts, corpus.hash, h.hexdigest()[:16])


def use(ref: Reference) -> None:
    """Make ``ref`` the session's reference."""
    st.session_state[keys.REFERENCE] = ref
    st.session_state.pop(keys.REFERENCE_CLEARED, None)


def current(corpus: Corpus | None) -> Reference | None:
    """The session's reference when it was counted for ``corpus`` (None otherwise)."""
    ref = st.session_state.get(keys.REFERENCE)
    if isinstance(ref, Reference) and corpus is not None and ref.corpus_hash == corpus.hash:
        return ref
    return None


def clear() -> None:
    """Stop using the reference (the user asked)."""
    st.session_state.pop(keys.REFERENCE, None)
    st.session_state.pop(keys.REFERENCE_CLEARED, None)


def forget_unless_for(corpus: Corpus) -> None:
    """Drop the reference when ``corpus`` is not the one it was counted for, and remember its name so the Corpus page
    can say why it is gone (once)."""
    ref = st.session_state.get(keys.REFERENCE)
    if ref is not None and getattr(ref, "corpus_hash", None) != corpus.hash:
        st.session_state.pop(keys.REFERENCE, None)
        st.session_state[keys.REFERENCE_CLEARED] = getattr(ref, "name", "the reference")


def pop_cleared() -> str | None:
    """The name of a reference dropped because the corpus changed, once."""
    return st.session_state.pop(keys.REFERENCE_CLEARED, None)
