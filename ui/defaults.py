"""The Train page's starting values: the engine's defaults, lowered through environment variables for tests and
demos (``BAT_STUDENT_EPOCHS=5`` …)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bat_core import grid
from bat_core.config import (
    DEFAULT_APP_SEEDS,
    DEFAULT_BAT_LAMBDA,
    DEFAULT_LAMBDA_GRID,
    DistillConfig,
    StudentConfig,
    TeacherConfig,
)
from bat_core.data.corpus import Corpus
from bat_core.training.selection import GAMMA_GRID

LAMBDA_CHOICES = tuple(x for x in DEFAULT_LAMBDA_GRID if x > 0)  # λ values offered besides the baseline
# background correction γ: "auto" = chosen on dev data (the default). Not None: a selectbox whose kept value is None
# shows its placeholder, so after leaving the Train page and coming back the box read "Choose an option"
GAMMA_AUTO = "auto"
GAMMA_OPTIONS = (GAMMA_AUTO, *GAMMA_GRID, 0.75, 1.0)
TEACHER_MODES = ("frozen", "top-n", "full")
TEACHER_KINDS = ("auto", "lexical", "transformer", "hybrid", "random")  # what makes neighbours (the knn head)
MAX_LENGTHS = (64, 128, 256, 512)


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


def start_lambdas(d: dict[str, Any] | None = None) -> list[float]:
    """The λ values the Train page starts with, besides the baseline."""
    return [x for x in (d or defaults())["lambdas"] if 0 < x <= 1] or [DEFAULT_BAT_LAMBDA]


def default_plan(corpus: Corpus) -> grid.Plan:
    """The plan of a Train pressed with no setting changed (what the app prepares ahead, ``ui.prebuild``); raises
    BatError when the defaults cannot train this corpus (the Train page then says why)."""
    d = defaults()
    return grid.plan(corpus, default_teacher(), StudentConfig(n_topics=d["n_topics"], epochs=d["epochs"]),
                     DistillConfig(temperature=d["temperature"], clip=d["clip"] or None), [0.0, *start_lambdas(d)],
                     grid.seed_list(d["n_seeds"]))


def teacher_heads(mode: str) -> list[str]:
    """The heads the Train page offers for a training mode (knn needs frozen embeddings)."""
    return ["knn", "linear", "mlp"] if mode == "frozen" else ["linear", "mlp"]


def teacher_start(d: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Train page's first teacher settings (before the user changes any): :func:`defaults` where the page offers
    them, else the page's own first choice."""
    d = d or defaults()
    mode = d["teacher_mode"] if d["teacher_mode"] in TEACHER_MODES else TEACHER_MODES[0]
    heads = teacher_heads(mode)
    head = d["teacher_head"] if d["teacher_head"] in heads else heads[0]
    return {"model": d["teacher_model"], "mode": mode, "head": head,
            "kind": d["teacher_kind"] if d["teacher_kind"] in TEACHER_KINDS else TEACHER_KINDS[0],
            "max_length": d["teacher_max_length"] if d["teacher_max_length"] in MAX_LENGTHS else 256,
            "epochs": d["teacher_epochs"] if mode == "frozen" else max(1, d["teacher_epochs"]),
            "head_epochs": d["teacher_head_epochs"]}


def teacher_config(model: str, mode: str, head: str, kind: str, max_length: int, epochs: int,
                   head_epochs: int) -> TeacherConfig:
    """The teacher settings the Train page trains with (raises BatError on impossible ones): the neighbours' kind
    counts only for the knn head (every other head reads the transformer)."""
    return TeacherConfig(model=model.strip() or "minilm", mode=mode, head=head,
                         kind=kind if head == "knn" else "transformer", max_length=int(max_length),
                         epochs=int(epochs), head_epochs=int(head_epochs))


def default_teacher() -> TeacherConfig:
    """The teacher the Train page trains with when the user changes nothing (what the app builds ahead)."""
    return teacher_config(**teacher_start())


def prebuild_teacher() -> bool:
    """Whether the app builds the default teacher in the background when a corpus is loaded (``BAT_PREBUILD_TEACHER=0``
    turns it off, e.g. to time a Train press on a cold cache)."""
    return env_default("BAT_PREBUILD_TEACHER", "1") != "0"


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
