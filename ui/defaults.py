"""The Train page's starting values: the engine's defaults, lowered through environment variables for tests and
demos (``BAT_STUDENT_EPOCHS=5`` …)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bat_core.config import DEFAULT_APP_SEEDS, DEFAULT_LAMBDA_GRID, DistillConfig, StudentConfig, TeacherConfig
from bat_core.training.selection import GAMMA_GRID

LAMBDA_CHOICES = tuple(x for x in DEFAULT_LAMBDA_GRID if x > 0)  # λ values offered besides the baseline
GAMMA_OPTIONS = (None, *GAMMA_GRID, 0.75, 1.0)  # background correction γ: None = chosen on dev data (the default)


def env_default(name: str, default: Any, cast: Callable[[str], Any] = str) -> Any:
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return cast(v)
    except ValueError:
        return default


def defaults() -> dict[str, Any]:
    t, s, d = TeacherConfig(), StudentConfig(), DistillConfig()
    return {
        "teacher_model": env_default("BAT_TEACHER_MODEL", t.model),
        "teacher_mode": env_default("BAT_TEACHER_MODE", t.mode),
        "teacher_head": env_default("BAT_TEACHER_HEAD", t.head),
        "teacher_kind": env_default("BAT_TEACHER_KIND", t.kind),
        "teacher_max_length": env_default("BAT_TEACHER_MAX_LENGTH", t.max_length, int),
        "teacher_epochs": env_default("BAT_TEACHER_EPOCHS", t.epochs, int),
        "teacher_head_epochs": env_default("BAT_TEACHER_HEAD_EPOCHS", t.head_epochs, int),
        "n_topics": env_default("BAT_N_TOPICS", s.n_topics, int),
        "epochs": env_default("BAT_STUDENT_EPOCHS", s.epochs, int),
        "temperature": d.temperature,
        "clip": float(d.clip or 0.0),
        "n_seeds": env_default("BAT_SEEDS", DEFAULT_APP_SEEDS, int),
        "lambdas": [float(x) for x in env_default("BAT_LAMBDAS", ",".join(f"{x:g}" for x in LAMBDA_CHOICES)).split(",")
                    if x.strip()],
    }


def next_lambda(trained: list[float], current: float) -> float:
    """The λ the Compare page offers to train next: the first grid value not trained yet; when the whole grid is,
    the midpoint between the slider's λ and the next trained λ above it (below it at the top of the range)."""
    untrained = [x for x in LAMBDA_CHOICES if not any(abs(x - y) < 1e-9 for y in trained)]
    if untrained:
        return float(untrained[0])
    grid = sorted({0.0, *trained})
    above = [x for x in grid if x > current + 1e-9]
    below = [x for x in grid if x < current - 1e-9]
    other = above[0] if above else (below[-1] if below else 0.0)
    return round((current + other) / 2, 3)
