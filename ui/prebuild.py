"""The Train page's defaults, prepared in the background as soon as a corpus is loaded (the demo at start, an upload
when it is read): the default teacher and, when that plan has one, its early first look (``bat_core.grid.prepare``:
the first seed's baseline and one BAT run on the teacher that needs no encoding, trained before the teacher). A Train
pressed later with the defaults finds the first look on disk and the teacher ready, or on their way.

One build per (cache, corpus, teacher settings) in a process, in a daemon thread; it never raises into a page (a
failure is logged and left to the real Train job, which meets the same error and reports it). A Train pressed
meanwhile with the defaults waits for this build (:meth:`Prebuild.wait`) instead of training the same runs again;
one with other student settings but the same teacher waits for the teacher inside :func:`bat_core.grid.get_teacher`
(one build per teacher at a time in a process); while it waits, this build's progress is the job's progress. A
training that needs another teacher (or none) stops the build, so that it has the cores to itself, and so does loading
another corpus (its own build starts). No Streamlit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bat_core.base.errors import BatError
from bat_core.base.progress import Cancelled, ProgressEvent, ShouldStop, check_stop
from bat_core.data.corpus import Corpus
from bat_core.grid import Plan
from bat_core.training.cache import Cache, teacher_key
from ui import perf
from ui.defaults import default_plan, default_teacher, prebuild_teacher
from ui.jobs import manager

log = logging.getLogger(__name__)


@dataclass
class Prebuild:
    """One background build of a teacher (and of the first look before it): its key, how far it is, how it ended."""

    key: str  # the teacher's key (bat_core.training.cache.teacher_key)
    first_look: frozenset[str] = frozenset()  # the default plan's early look (baseline, candidate), if it has one
    adopted: str | None = None  # the key the candidate's run moves to when the teacher chooses the early one
    claimed: bool = False  # a Train with the defaults took these runs over (they are its runs from then on)
    state: str = "running"  # running | done | error | cancelled (a training of another teacher, or another corpus)
    error: str | None = None
    event: ProgressEvent | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    def covers(self, plan: Plan | None) -> bool:
        """Whether this build trains ``plan``'s early look (a Train pressed with the defaults): its job waits."""
        return plan is not None and bool(self.first_look) and self.first_look == plan.early_look_keys

    def wait(self, should_stop: ShouldStop | None = None) -> float:
        """Wait until this build ends (cancellable: raises ``Cancelled`` when ``should_stop`` says so); the seconds
        waited."""
        t0 = time.time()
        while not self.ended.wait(0.1):
            check_stop(should_stop)
        return time.time() - t0


def ahead_of(run_key: str, cache_dir: str | None = None) -> Prebuild | None:
    """The build that trained this run ahead in this cache, for a Train that has not been pressed yet (no job has
    claimed it), or None: the Compare page then says that this run is a candidate prepared ahead, not the chosen γ's."""
    teachers = Cache(cache_dir).root / "teachers"
    for where, build in list(_builds.items()):
        if Path(where).parent == teachers and not build.claimed and run_key in build.first_look | {build.adopted}:
            return build
    return None


_lock = threading.Lock()
_builds: dict[str, Prebuild] = {}  # the teacher's cache folder → its build (a failed one is kept: not retried)
_latest: list[Prebuild] = []  # the build of the corpus loaded last: an older one still running stops for it


def _where(cache: Cache, corpus: Corpus, tcfg: Any) -> tuple[str, str]:
    key = teacher_key(corpus, tcfg)
    return key, str(cache.teacher_path(key))


def start(corpus: Corpus, cache_dir: str | None = None) -> Prebuild | None:
    """Start preparing the Train page's defaults for ``corpus`` in the app's cache (the teacher, and the early first
    look before it), unless the teacher is there, being built, or was tried already in this process; returns its
    build (None when there is nothing to do). Never raises: this is only a head start."""
    try:
        if not prebuild_teacher():
            return None
        tcfg = default_teacher()
        try:
            plan: Plan | None = default_plan(corpus)
        except BatError:  # the defaults cannot train this corpus (the Train page says why): the teacher alone
            plan = None
        cache = Cache(cache_dir)
        key, where = _where(cache, corpus, tcfg)
        with _lock:
            if where in _builds:
                return _builds[where]
            if cache.teacher_cached(corpus, tcfg):
                return None
            look = plan.early_look_keys if plan is not None else frozenset()
            adopted = plan.gamma.first_look.key if look and plan is not None and plan.gamma is not None else None
            build = _builds[where] = Prebuild(key, look, adopted)
            _latest[:] = [build]
        try:
            threading.Thread(target=_build, args=(build, where, corpus, tcfg, plan, cache.root),
                             name="bat-teacher-prebuild", daemon=True).start()
        except Exception as e:  # no thread: a Train must not wait for it
            build.state, build.error, build.finished = "error", f"{type(e).__name__}: {e}", time.time()
            build.ended.set()
            raise
        return build
    except Exception:  # noqa: BLE001 - a head start only: the Train job builds (and reports) it otherwise
        log.warning("could not start building the default teacher in the background", exc_info=True)
        return None


def _build(build: Prebuild, where: str, corpus: Corpus, tcfg: Any, plan: Plan | None, root: Any) -> None:
    from bat_core import grid

    def progress(ev: ProgressEvent) -> None:
        build.event = ev
        job = manager().active()  # a Train job waiting for this build shows its progress as its own
        if job is None or job.step != 0 or getattr(job.watch, "teacher_key", None) != build.key:
            return
        if build.covers(getattr(job.watch, "plan", None)) or ev.stage.startswith("teacher"):
            job.progress(ev)  # (a job with other students trains its own early look: not these runs' progress)

    def should_stop() -> bool:  # a training that does not wait for this build gets the cores to itself
        job = manager().active()
        if job is not None and build.covers(getattr(job.watch, "plan", None)):
            return False  # a Train with the defaults waits for this very build
        if _latest and _latest[0] is not build:  # another corpus was loaded since: its build gets the cores
            return True
        if job is None:
            return False
        if getattr(job.watch, "teacher_key", None) != build.key:  # another teacher, or none
            return True
        # the same teacher with other students: the job trains its own early look, then waits for this teacher
        return build.event is None or not build.event.stage.startswith("teacher")

    try:
        perf.wait_warm()  # the app's import warm-up first: two threads importing one package can trip
        if plan is not None and plan.teacher == tcfg:
            grid.prepare(plan, root, progress, should_stop)
        else:
            grid.get_teacher(corpus, tcfg, root, progress, should_stop)
        build.state = "done"
    except Cancelled:
        build.state = "cancelled"
        with _lock:  # a later load of this corpus may start it again (a failed one is not retried)
            _builds.pop(where, None)
        log.info("preparing the defaults in the background stopped: a training or another corpus needs the cores")
    except Exception as e:  # noqa: BLE001 - never into a page; the Train job meets the same error and reports it
        build.error = f"{type(e).__name__}: {e}"
        build.state = "error"
        log.warning("building the default teacher in the background failed (Train will report it): %s", build.error)
    finally:
        build.finished = time.time()
        build.ended.set()


def status(corpus: Corpus, tcfg: Any, cache_dir: str | None = None) -> Prebuild | None:
    """The background build of this teacher (these settings, this corpus, this cache), if one was started."""
    try:
        return _builds.get(_where(Cache(cache_dir), corpus, tcfg)[1])
    except Exception:  # noqa: BLE001 - settings that cannot be keyed were never built ahead
        return None


def of(cache_dir: str | Path, key: str | None) -> Prebuild | None:
    """The background build of the teacher with this key in this cache (None when there was none)."""
    return _builds.get(str(Cache(cache_dir).teacher_path(key))) if key else None
