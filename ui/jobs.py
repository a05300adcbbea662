"""Background jobs for the app: training runs in a thread so pages stay responsive and can show live progress.

One job at a time per server process (the CPU is the bottleneck; two trainings would only slow each other down).
A job's ``work(job)`` calls the engine with ``job.progress`` and ``job.should_stop``; pages poll the job's state
from an ``st.fragment(run_every=…)``. No Streamlit import here, so the jobs are testable on their own.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bat_core.base.errors import BatError
from bat_core.base.progress import Cancelled, ProgressEvent


@dataclass
class Job:
    label: str
    corpus_hash: str
    steps: list[str]  # human-readable plan (pipeline.Plan.steps), e.g. ["teacher", "λ=0 seed=0", "λ=0.5 seed=0"]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    state: str = "running"  # running | done | error | cancelled
    step: int = 0  # index into steps of the current step
    event: ProgressEvent | None = None
    best: dict[str, Any] = field(default_factory=dict)  # best dev NPMI seen per stage
    notes: list[str] = field(default_factory=list)  # finished steps, one line each
    error: str | None = None
    detail: str | None = None  # traceback of an unexpected error
    run_keys: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    watch: Any = None  # what the work tells pages about its plan while it runs (a ui.live.GridWatch for a training)
    clock: Any = None  # a training's time estimate and the runs it trained so far (ui.estimates.Clock)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    # per stage: when its first event came, the count it reported then, and the last count: the stack's own pace
    _stages: dict[str, tuple[float, int, int]] = field(default_factory=dict, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------------------------------- called by the engine
    def progress(self, ev: ProgressEvent) -> None:
        with self._lock:
            self.event = ev
            t0, d0, last = self._stages.get(ev.stage, (0.0, 0, 0))
            if ev.done <= last or not t0:  # a stage's first event, or a later stack under the same name
                t0, d0 = time.time(), ev.done
            self._stages[ev.stage] = (t0, d0, ev.done)
            d = ev.metrics.get("dev_npmi")
            if isinstance(d, (int, float)) and d > self.best.get(ev.stage, float("-inf")):
                self.best[ev.stage] = float(d)

    def should_stop(self) -> bool:
        return self._stop.is_set()

    # ----------------------------------------------------------------------------------------- called by pages
    def cancel(self) -> None:
        self._stop.set()

    def next_step(self, note: str | None = None) -> None:
        with self._lock:
            if note:
                self.notes.append(note)
            self.step += 1
            self.event = None

    def stage_left(self) -> float | None:
        """Seconds the stage now reporting still needs at its own pace so far (its epochs since its first report),
        or None before it has a pace. A floor for the ETA: an estimate that priced the stack too cheap (a busier
        machine, settings far from the calibration's) would otherwise count down to "1 s left" while the stack
        still has minutes to go, since the estimate is only corrected when a stack lands."""
        ev = self.event
        if ev is None or not self.running:
            return None
        t0, d0, _ = self._stages.get(ev.stage, (0.0, 0, 0))
        if not t0 or ev.done - d0 < 2 or ev.done >= ev.total:
            return None
        return (time.time() - t0) / (ev.done - d0) * (ev.total - ev.done)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def cancelling(self) -> bool:
        return self.running and self._stop.is_set()

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def fraction(self) -> float:
        """Overall progress: finished steps plus the fraction of the current one."""
        if not self.steps:
            return 1.0
        if not self.running:
            return 1.0 if self.state == "done" else min(1.0, self.step / len(self.steps))
        ev = self.event
        part = ev.fraction if ev is not None else 0.0
        return min(1.0, (self.step + part) / len(self.steps))


class JobManager:
    """Holds the current job (and the last finished ones) for the whole server process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.current: Job | None = None

    def active(self) -> Job | None:
        j = self.current
        return j if j is not None and j.running else None

    def get(self, job_id: str | None) -> Job | None:
        return self.jobs.get(job_id) if job_id else None

    def start(self, job: Job, work: Callable[[Job], dict | None]) -> Job:
        """Start ``work(job)`` in a daemon thread; if a job is already running, return that one instead."""
        with self._lock:
            if self.active() is not None:
                return self.active()  # type: ignore[return-value]
            self.jobs[job.id] = job
            self.current = job
            if len(self.jobs) > 20:
                for k in list(self.jobs)[:-20]:
                    self.jobs.pop(k, None)

        def target() -> None:
            try:
                res = work(job)
                job.result = res or {}
                job.state = "done"
            except Cancelled:
                job.state = "cancelled"
            except BatError as e:
                job.error = str(e)
                job.state = "error"
            except Exception as e:  # noqa: BLE001  an engine bug must not kill the server; show it instead
                job.error = f"{type(e).__name__}: {e}"
                job.detail = traceback.format_exc()
                job.state = "error"
            finally:
                job.finished = time.time()

        threading.Thread(target=target, name=f"bat-job-{job.id}", daemon=True).start()
        return job

    def wait(self, job: Job, timeout: float = 600.0) -> Job:
        """Block until ``job`` finishes (tests and the CLI-like paths)."""
        t0 = time.time()
        while job.running and time.time() - t0 < timeout:
            time.sleep(0.05)
        return job


_MANAGER = JobManager()


def manager() -> JobManager:
    """The process-wide job manager (module level: shared by every session and by tests)."""
    return _MANAGER
