"""How long a training will take, said on the Train page before it starts and corrected while it runs.

:func:`bat_core.training.estimate.estimate` may take seconds the first time on a machine (it measures the student's
and the encoder's speeds, then reads them from its cache) and tokenizes the corpus to count the encoder's windows, so
the page never calls it on its own path: :func:`lookup` starts it in a daemon thread, once per plan state, and says
"not yet" until it is done. A job reuses the page's estimate (the same :func:`lookup`, never waited for) and keeps
a :class:`Clock` that turns it into an ETA as runs land, rescaled by how fast the finished part went
(``Estimate.remaining``). No Streamlit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bat_core import grid
from bat_core.base.errors import BatError
from bat_core.data.corpus import Corpus
from bat_core.training import estimate as est_mod
from bat_core.training.cache import Cache
from ui import perf

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """One estimate being computed (or done) in the background."""

    state: str = "running"  # running | done | refused (settings that cannot train) | error
    estimate: Any = None  # bat_core.training.estimate.Estimate when done
    error: str | None = None
    started: float = field(default_factory=time.time)


_lock = threading.Lock()
_pending: dict[tuple, Pending] = {}


def settings_key(corpus: Corpus, settings: tuple, cache_dir: str | Path | None) -> tuple:
    """What the estimate depends on, without building the plan (that imports the trainer): the corpus, the settings
    (teacher, student, distillation, λ, seeds), the cache folder, whether the default teacher of these settings is in
    it and which runs are (a run or a teacher that lands changes the estimate)."""
    cache = Cache(cache_dir)
    tcfg = settings[0]
    try:
        teacher = cache.teacher_cached(corpus, tcfg)
    except Exception:  # noqa: BLE001 - settings that cannot be keyed are estimated (and refused) by the thread
        teacher = False
    try:
        present = frozenset(d.name for d in os.scandir(cache.runs.root))
    except OSError:
        present = frozenset()
    return str(cache.root), corpus.hash, repr(settings), teacher, present


def _compute(pending: Pending, corpus: Corpus, settings: tuple, cache_dir: str | Path | None) -> None:
    try:
        perf.wait_warm()  # the app's import warm-up first: two threads importing one package can trip
        tcfg, scfg, dcfg, lambdas, seeds = settings
        p = grid.plan(corpus, tcfg, scfg, dcfg, lambdas, seeds)
        pending.estimate = est_mod.estimate(p, Path(cache_dir) if cache_dir is not None else None)
        pending.state = "done"
    except BatError as e:  # settings that cannot train: the page says why when Train is pressed
        pending.error = str(e)
        pending.state = "refused"
    except Exception as e:  # noqa: BLE001 - an estimate only: the page says it has none, training is unaffected
        pending.error = f"{type(e).__name__}: {e}"
        pending.state = "error"
        log.warning("could not estimate the training time: %s", pending.error)


def lookup(corpus: Corpus, tcfg: Any, scfg: Any, dcfg: Any, lambdas: Sequence[float], seeds: Sequence[int],
           cache_dir: str | Path | None = None) -> Pending:
    """The estimate of the plan these settings make (``bat_core.grid.plan``) in this cache: plan and estimate are
    computed in a daemon thread the first time they are asked for; the same settings and cache state find it again."""
    settings = (tcfg, scfg, dcfg, tuple(float(x) for x in lambdas), tuple(int(s) for s in seeds))
    key = settings_key(corpus, settings, cache_dir)
    with _lock:
        pending = _pending.get(key)
        if pending is not None:
            return pending
        pending = _pending[key] = Pending()
        if len(_pending) > 64:
            for k in list(_pending)[:-64]:
                _pending.pop(k, None)
    threading.Thread(target=_compute, args=(pending, corpus, settings, cache_dir), name="bat-estimate",
                     daemon=True).start()
    return pending


duration = est_mod.duration  # one wording for the page and the engine's sentence


class Clock(est_mod.Tally):
    """The job's estimate (the page's, possibly still being computed when the job started) and its tally of what
    is done: an ETA as runs land."""

    def __init__(self, estimate: Any = None) -> None:
        super().__init__()
        self._estimate = estimate
        self.pending: Pending | None = None  # the estimate still being computed when the job started

    def step(self, step: object, e: Any = None) -> None:
        """Count a grid step against this job's estimate by default."""
        super().step(step, self.estimate if e is None else e)

    @property
    def estimate(self) -> Any:
        if self._estimate is None and self.pending is not None and self.pending.state == "done":
            self._estimate = self.pending.estimate
        return self._estimate

    def done_s(self, e: Any = None) -> float:  # type: ignore[override]
        """Estimated seconds of work done, against this job's estimate by default."""
        return super().done_s(self.estimate if e is None else e)

    def line(self, elapsed: float, step_text: str = "", runs: bool = True, at_least: float | None = None) -> str:
        """"Step 3 of 9 · 12 s so far · 2 of about 8 runs trained · about 40 s left (estimated 52 s in all)".
        ``runs=False`` leaves the count of runs out, for a panel whose own line counts the runs in the cache: the two
        counts differ when runs prepared in the background or cached meanwhile land, and side by side they read as a
        contradiction ("0 of about 8 runs trained" above "2 of 8 runs done"). ``at_least``: seconds the stack in
        flight still needs at its own pace (``Job.stage_left``); the ETA is never below it."""
        parts = [step_text] if step_text else []
        parts.append(f"{duration(elapsed)} so far")
        e = self.estimate
        if e is None:
            return " · ".join(parts)
        if runs:
            parts.append(f"{self.runs_done(e)} of about {self.runs_total(e)} runs trained")
        left = self.left_s(e, elapsed)
        if at_least is not None and at_least > left:
            parts.append(f"about {duration(at_least)} left at least (the stack in training, at its pace so far)")
        elif self.done_s() > 0:
            parts.append(f"about {duration(left)} left (rescaled by how fast the finished part went)")
        else:
            parts.append(f"about {duration(left)} left (estimated {duration(self.total_s(e))} in all)")
        return " · ".join(parts)

    def took(self, elapsed: float) -> str:
        """What it took next to the estimate: "took 48 s; estimated about 52 s before it started"."""
        if self.estimate is None:
            return f"took {duration(elapsed)}"
        return f"took {duration(elapsed)}; estimated about {duration(self.estimate.total_s)} before it started"
