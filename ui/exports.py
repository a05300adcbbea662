"""Download buttons for one run: topics CSV, document–topic CSV, settings and metrics JSON (bat_core.exports)."""

from __future__ import annotations

import streamlit as st

from bat_core import exports
from bat_core.corpus import Corpus
from bat_core.runs import Run

DEFER_CELLS = 500_000  # a θ bigger than this is written only when the user asks for it


def export_buttons(run: Run, corpus: Corpus, where: str) -> None:
    tag = exports.file_tag(run, corpus)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Topics (CSV)", exports.topics_csv(run), f"topics-{tag}.csv", "text/csv",
                       key=f"{where}_dl_topics")
    # a big θ is written only when asked for (deferred download), so moving the λ slider stays instant
    big = corpus.n_docs * run.n_topics > DEFER_CELLS
    theta = (lambda: exports.doc_topic_csv(run, corpus)) if big else exports.doc_topic_csv(run, corpus)
    c2.download_button("Document–topic proportions (CSV)", theta, f"doc-topics-{tag}.csv", "text/csv",
                       key=f"{where}_dl_theta")
    c3.download_button("Settings and metrics (JSON)", exports.run_json(run), f"run-{tag}.json", "application/json",
                       key=f"{where}_dl_json")
