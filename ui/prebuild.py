"""The default teacher, built in the background as soon as a corpus is loaded (the demo at start, an upload when it
is read), so that a Train pressed later finds it ready, or in progress, instead of starting it.

One build per (cache, corpus, settings) in a process, in a daemon thread; it never raises into a page (a failure is
logged and left to the real Train job, which meets the same error and reports it). A Train pressed meanwhile waits
inside :func:`bat_core.grid.get_teacher` (one build per teacher at a time in a process) and reads the result; while
it waits, this build's progress is the job's progress. A training that needs another teacher (or none) stops the
build, so that it has the cores to itself. No Streamlit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bat_core.base.progress import Cancelled, ProgressEvent
from bat_core.data.corpus import Corpus
from bat_core.training.cache import Cache, teacher_key
from ui import perf
from ui.defaults import default_teacher, prebuild_teacher
from ui.jobs import manager

log = logging.getLogger(__name__)


@dataclass
class Prebuild:
    """One background build of a teacher: its key, how far it is, and how it ended."""

    key: str  # the teacher's key (bat_core.training.cache.teacher_key)
    state: str = "running"  # running | done | error | cancelled (a training of another teacher started)
    error: str | None = None
    event: ProgressEvent | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started


_lock = threading.Lock()
_builds: dict[str, Prebuild] = {}  # the teacher's cache folder → its build (kept: a failed one is not retried)


def _where(cache: Cache, corpus: Corpus, tcfg: Any) -> tuple[str, str]:
    key = teacher_key(corpus, tcfg)
    return key, str(cache.teacher_path(key))


def start(corpus: Corpus, cache_dir: str | None = None) -> Prebuild | None:
    """Start building the Train page's default teacher for ``corpus`` in the app's cache, unless it is there, being
    built, or was tried already in this process; returns its build (None when there is nothing to do). Never raises:
    this is only a head start."""
    try:
        if not prebuild_teacher():
            return None
        tcfg = default_teacher()
        cache = Cache(cache_dir)
        key, where = _where(cache, corpus, tcfg)
        with _lock:
            if where in _builds:
                return _builds[where]
            if cache.teacher_cached(corpus, tcfg):
                return None
            build = _builds[where] = Prebuild(key)
        threading.Thread(target=_build, args=(build, corpus, tcfg, cache.root), name="bat-teacher-prebuild",
                         daemon=True).start()
        return build
    except Exception:  # noqa: BLE001 - a head start only: the Train job builds (and reports) it otherwise
        log.warning("could not start building the default teacher in the background", exc_info=True)
        return None


def _build(build: Prebuild, corpus: Corpus, tcfg: Any, root: Any) -> None:
    from bat_core import grid

    def progress(ev: ProgressEvent) -> None:
        build.event = ev
        job = manager().active()  # a Train job waiting for this teacher shows this build's progress as its own
        if job is not None and job.step == 0 and getattr(job.watch, "teacher_key", None) == build.key:
            job.progress(ev)

    def should_stop() -> bool:  # a training that does not wait for this teacher gets the cores to itself
        job = manager().active()
        return job is not None and getattr(job.watch, "teacher_key", None) != build.key

    try:
        perf.wait_warm()  # the app's import warm-up first: two threads importing one package can trip
        grid.get_teacher(corpus, tcfg, root, progress, should_stop)
        build.state = "done"
    except Cancelled:
        build.state = "cancelled"
        log.info("building the default teacher in the background stopped: a training needs the cores")
    except Exception as e:  # noqa: BLE001 - never into a page; the Train job meets the same error and reports it
        build.error = f"{type(e).__name__}: {e}"
        build.state = "error"
        log.warning("building the default teacher in the background failed (Train will report it): %s", build.error)
    finally:
        build.finished = time.time()


def status(corpus: Corpus, tcfg: Any, cache_dir: str | None = None) -> Prebuild | None:
    """The background build of this teacher (these settings, this corpus, this cache), if one was started."""
    try:
        return _builds.get(_where(Cache(cache_dir), corpus, tcfg)[1])
    except Exception:  # noqa: BLE001 - settings that cannot be keyed were never built ahead
        return None


def of(cache_dir: str | Path, key: str | None) -> Prebuild | None:
    """The background build of the teacher with this key in this cache (None when there was none)."""
    return _builds.get(str(Cache(cache_dir).teacher_path(key))) if key else None
