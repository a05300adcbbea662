"""Download buttons for one run: topics CSV, document–topic CSV, settings and metrics JSON (bat_core.runs.exports)."""

from __future__ import annotations

import streamlit as st

from bat_core.data.corpus import Corpus
from bat_core.runs import exports
from bat_core.runs.store import Run

DEFER_CELLS = 500_000  # a θ bigger than this is written only when the user asks for it


@st.cache_data(max_entries=256, show_spinner=False)
def _small(run_key: str, corpus_hash: str, _run: Run, _corpus: Corpus) -> tuple[bytes, bytes]:
    """Topics CSV and run JSON, once per run (runs are immutable)."""
    return exports.topics_csv(_run), exports.run_json(_run)


@st.cache_data(max_entries=64, show_spinner=False)
def _theta(run_key: str, corpus_hash: str, _run: Run, _corpus: Corpus) -> bytes:
    return exports.doc_topic_csv(_run, _corpus)


def export_buttons(run: Run, corpus: Corpus, where: str) -> None:
    tag = exports.file_tag(run, corpus)
    topics, run_json = _small(run.key, corpus.hash, run, corpus)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Topics (CSV)", topics, f"topics-{tag}.csv", "text/csv", key=f"{where}_dl_topics")
    # a big θ is written only when asked for (deferred download), so moving the λ slider stays instant
    big = corpus.n_docs * run.n_topics > DEFER_CELLS
    theta = (lambda: exports.doc_topic_csv(run, corpus)) if big else _theta(run.key, corpus.hash, run, corpus)
    c2.download_button("Document–topic proportions (CSV)", theta, f"doc-topics-{tag}.csv", "text/csv",
                       key=f"{where}_dl_theta")
    c3.download_button("Settings and metrics (JSON)", run_json, f"run-{tag}.json", "application/json",
                       key=f"{where}_dl_json")
