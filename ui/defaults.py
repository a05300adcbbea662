"""The Train page's starting values: the engine's defaults, lowered through environment variables for tests and
demos (``BAT_STUDENT_EPOCHS=5`` …)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bat_core.config import DistillConfig, StudentConfig, TeacherConfig
from bat_core.pipeline import DEFAULT_BAT_LAMBDA

LAMBDA_CHOICES = (0.1, 0.25, DEFAULT_BAT_LAMBDA, 0.75, 0.9, 1.0)  # λ values offered besides the baseline


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
        "teacher_max_length": env_default("BAT_TEACHER_MAX_LENGTH", t.max_length, int),
        "teacher_epochs": env_default("BAT_TEACHER_EPOCHS", t.epochs, int),
        "teacher_head_epochs": env_default("BAT_TEACHER_HEAD_EPOCHS", t.head_epochs, int),
        "n_topics": env_default("BAT_N_TOPICS", s.n_topics, int),
        "epochs": env_default("BAT_STUDENT_EPOCHS", s.epochs, int),
        "temperature": d.temperature,
        "clip": float(d.clip or 0.0),
        "n_seeds": env_default("BAT_SEEDS", 1, int),
        "lambdas": [float(x) for x in env_default("BAT_LAMBDAS", f"{DEFAULT_BAT_LAMBDA:g}").split(",") if x.strip()],
    }
