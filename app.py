"""BAT Explorer: train a topic model with and without a teacher's predicted bag of words, and see what it changes.

Run with ``streamlit run app.py`` (or ``make app``). This script is the navigation entry point: Streamlit runs it on
every request, whichever page the URL names, so the demo corpus and the sidebar are there even when the first
request is a deep link such as ``/compare``. Only the pages declared below exist: the page scripts live in
``views/`` (not ``pages/``, which Streamlit would also auto-discover and run without this script on a fresh
server's first request) and the helpers in ``ui/``.
"""

import streamlit as st

from ui import perf, sidebar, state

CORPUS = st.Page("views/corpus.py", title="Corpus", url_path="corpus")


def _root() -> None:
    """The app's root URL opens the Corpus page under its own address. Streamlit serves its default page at the root
    only, so with Corpus as the default page a deep link to /corpus showed "Page not found"."""
    st.switch_page(CORPUS)


PAGES = [
    st.Page(_root, title="BAT Explorer", url_path="start", default=True, visibility="hidden"),
    CORPUS,
    st.Page("views/train.py", title="Train", url_path="train"),
    st.Page("views/compare.py", title="Compare", url_path="compare"),
    st.Page("views/ldavis.py", title="pyLDAvis", url_path="ldavis"),
]

st.set_page_config(page_title="BAT Explorer", layout="wide")
nav = st.navigation(PAGES)
perf.warm_engine()  # the teacher's imports while the user reads the first page, unless the build below does them
state.ensure_corpus()  # a session's first run: the demo corpus, and its default teacher built in the background
sidebar.sidebar()
nav.run()
