"""Cached reads for the views: the saved runs of a corpus, a teacher's logits and meta, through the engine's cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from bat_core.base.errors import BatError
from bat_core.base.io import read_json
from bat_core.config import TeacherConfig
from bat_core.data.corpus import Corpus
from bat_core.runs.store import Run, RunStore
from bat_core.teachers.store import META_FILE, TeacherLogits
from bat_core.training.cache import Cache, teacher_key


def cache() -> Cache:
    """The cache the app trains into ($BAT_CACHE_DIR or ./.bat_cache), shared with the CLI."""
    return Cache()


def _runs_signature(store: RunStore) -> tuple:
    """What changes when a run is saved: the keys and save times (``RunStore.listing``)."""
    return tuple(sorted(store.listing()))


def present_keys() -> frozenset[str]:
    """The keys of the runs saved in the app's cache now (folder names only, nothing read): what a page that follows a
    running job compares to see whether a run landed."""
    return frozenset(key for key, _ in cache().runs.listing())


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_runs(root: str, signature: tuple) -> list[Run]:
    return Cache(root).runs.runs()


def all_runs(corpus: Corpus | None = None) -> list[Run]:
    """Every saved run (for ``corpus`` if given), newest first; re-read from disk only when a run was added."""
    c = cache()
    runs = _load_runs(str(c.root), _runs_signature(c.runs))
    if corpus is not None:
        runs = [r for r in runs if r.config.get("corpus_hash") == corpus.hash]
    return runs


@st.cache_resource(max_entries=4, show_spinner=False)
def _teacher_logits(root: str, key: str) -> TeacherLogits | None:
    return Cache(root).teacher_logits(key)


def teacher_logits(key: str) -> TeacherLogits | None:
    """The cached teacher logits store with this key, or None when it is not on disk."""
    return _teacher_logits(str(cache().root), key)


@st.cache_data(max_entries=32, show_spinner=False)
def _teacher_meta(path: str, mtime: float) -> dict[str, Any]:
    return read_json(Path(path))


def teacher_meta(corpus: Corpus, tcfg: TeacherConfig) -> dict[str, Any] | None:
    """The stored meta of the teacher for this corpus and these settings (what it is, its scores), or None when it
    is not trained yet; reads only its meta.json."""
    path = cache().teacher_path(teacher_key(corpus, tcfg)) / META_FILE
    try:
        return _teacher_meta(str(path), path.stat().st_mtime)
    except (OSError, ValueError, BatError):
        return None
