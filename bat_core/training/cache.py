"""The cache folder's layout, in one place: where runs and teacher logits live and how they are named.

    <root>/runs/<run key>/                      one student run (runs/store.py)
    <root>/teachers/<corpus hash>-<settings>/   one teacher's logits store (teachers/store.py)
    <root>/embeddings/…                         frozen-encoder embeddings (teachers/head.py)

The app, the CLI and the benchmarks all go through :class:`Cache`, so a run trained in one is found by the others.
Nothing here loads an encoder or imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..base.errors import BatError
from ..config import TeacherConfig
from ..data.corpus import Corpus
from ..runs.store import RunStore
from ..teachers.store import META_FILE, TeacherLogits


def default_cache_dir() -> Path:
    """``$BAT_CACHE_DIR`` or ``./.bat_cache``."""
    return Path(os.environ.get("BAT_CACHE_DIR", ".bat_cache")).expanduser()


def teacher_key(corpus: Corpus, tcfg: TeacherConfig) -> str:
    """The key a teacher's logits store carries (``TeacherLogits.key``), known before the teacher is built."""
    return f"{corpus.hash}-{tcfg.key()}"


class Cache:
    """One cache folder: its run store and its teacher logits stores."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    @property
    def runs(self) -> RunStore:
        return RunStore(self.root / "runs")

    def teacher_path(self, key: str) -> Path:
        return self.root / "teachers" / key

    def teacher_cached(self, corpus: Corpus, tcfg: TeacherConfig) -> bool:
        """Whether the teacher for this corpus and these settings is on disk (nothing is loaded)."""
        return (self.teacher_path(teacher_key(corpus, tcfg)) / META_FILE).is_file()

    def teacher_logits(self, key: str) -> TeacherLogits | None:
        """The stored teacher logits with this key, or None when they are not (or no longer) readable."""
        try:
            return TeacherLogits.load(self.teacher_path(key))
        except BatError:
            return None
