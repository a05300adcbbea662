"""BAT Explorer: train a topic model with and without a BERT teacher and see what the teacher changes.

Run with ``streamlit run app.py``. Pages are thin views over ``bat_core`` (see docs/architecture.md).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # background threads import from bat_core/pages after Streamlit restores sys.path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from pages import _ui  # noqa: E402

st.set_page_config(page_title="BAT Explorer", layout="wide")

_ui.ensure_corpus()
nav = st.navigation([
    st.Page("pages/corpus.py", title="Corpus", url_path="corpus", default=True),
    st.Page("pages/train.py", title="Train", url_path="train"),
    st.Page("pages/compare.py", title="Compare", url_path="compare"),
    st.Page("pages/ldavis.py", title="pyLDAvis", url_path="ldavis"),
])
_ui.sidebar()
nav.run()
