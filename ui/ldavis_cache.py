"""The offline pyLDAvis page of a run, cached per run key (runs are immutable; preparing one takes seconds)."""

from __future__ import annotations

import streamlit as st

from bat_core.data.corpus import Corpus
from bat_core.explore import ldavis
from bat_core.explore.families import run_label
from bat_core.runs.store import Run


@st.cache_data(max_entries=32, show_spinner="Preparing pyLDAvis…")
def _html(run_key: str, corpus_hash: str, title: str, _run: Run, _corpus: Corpus) -> str:
    return ldavis.run_html(_run, _corpus.counts, _corpus.vocab, title=title)


def title(run: Run) -> str:
    return f"{run_label(run)}, seed {run.seed}"


def run_page(run: Run, corpus: Corpus, zoom: float = 1.0) -> str:
    """Self-contained LDAvis HTML for ``run`` (topic numbers as on the Compare page), drawn at ``zoom``."""
    return ldavis.with_zoom(_html(run.key, corpus.hash, title(run), run, corpus), zoom)
