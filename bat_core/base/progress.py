"""Progress reporting shared by the engine, the CLI (tqdm) and the app (st.progress).

Every long-running function takes ``progress: Progress | None`` and calls it with a :class:`ProgressEvent`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProgressEvent:
    stage: str  # e.g. "teacher: encode", "student λ=0.5 seed=1"
    done: int
    total: int
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


Progress = Callable[[ProgressEvent], None]
ShouldStop = Callable[[], bool]


class Cancelled(Exception):
    """Raised inside a long job when ``should_stop()`` returned True."""


def report(progress: Progress | None, stage: str, done: int, total: int, message: str = "", **metrics: Any) -> None:
    if progress is not None:
        progress(ProgressEvent(stage, done, total, message, metrics))


def check_stop(should_stop: ShouldStop | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled by the user")


class TqdmProgress:
    """A :data:`Progress` that draws one tqdm bar per stage on stderr."""

    def __init__(self, disable: bool = False) -> None:
        self._bar = None
        self._stage: str | None = None
        self._disable = disable

    def __call__(self, ev: ProgressEvent) -> None:
        from tqdm import tqdm

        if ev.stage != self._stage:
            self.close()
            self._stage = ev.stage
            self._bar = tqdm(total=ev.total, desc=ev.stage, file=sys.stderr, leave=False, disable=self._disable,
                             delay=1.0)  # short steps draw nothing, so an early error stays one line
        assert self._bar is not None
        if ev.total != self._bar.total:
            self._bar.total = ev.total
        post = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in ev.metrics.items()}
        if post:
            self._bar.set_postfix(post, refresh=False)
        self._bar.update(ev.done - self._bar.n)  # redraws at most every mininterval

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
