"""Starting a training from the app: the engine's plan, executed in a background job (one path with the CLI).

:func:`job_work` holds no Streamlit, so tests can run exactly what the app's job runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from bat_core import grid
from bat_core.base.errors import BatError
from bat_core.config import DistillConfig, StudentConfig, TeacherConfig
from bat_core.data.corpus import Corpus
from bat_core.runs.store import Run
from bat_core.teachers.choice import choice_line
from bat_core.training.selection import describe_gamma
from ui import perf
from ui.jobs import Job, manager
from ui.runs import cache


def teacher_note(step: grid.Step, tcfg: TeacherConfig) -> str:
    meta = step.teacher_meta or {}
    note = (f"teacher {'read from cache' if step.cached else 'trained'} in {step.wall_time_s:.1f} s "
            f"(mode {meta.get('mode', tcfg.mode)}")
    ppl, uni = meta.get("dev_perplexity"), meta.get("unigram_dev_perplexity")
    if isinstance(ppl, int | float):
        note += f", dev perplexity {ppl:,.0f}"
        if isinstance(uni, int | float):
            note += f" vs {uni:,.0f} for word frequencies alone"
    note += ")"
    line = choice_line(meta)
    if line:
        note += ". " + line
    return note


def member_note(step: grid.Step) -> str:
    assert step.run is not None
    return (f"{step.label}: test NPMI {step.run.metrics.get('test_npmi', float('nan')):.3f}"
            + (" (cached)" if step.cached else ""))


def job_work(p: grid.Plan, cache_dir: Path) -> Callable[[Job], dict[str, Any]]:
    """What the background job runs: ``bat_core.grid.execute`` with the job's progress and cancel hooks."""

    def work(job: Job) -> dict[str, Any]:
        def on_step(step: grid.Step) -> None:
            if step.gamma is not None:
                job.next_step(describe_gamma(step.gamma) + (" (runs read from cache)" if step.cached else ""))
            elif step.member is None:
                job.next_step(teacher_note(step, p.teacher))
            else:
                assert step.run is not None
                job.run_keys.append(step.run.key)
                job.next_step(member_note(step))

        perf.wait_warm()  # the app's background import of the teacher's code, if it is still running
        result = grid.execute(p, cache_dir, job.progress, job.should_stop, on_step)
        return {"teacher_from_cache": result.teacher_cached, "teacher_key": p.teacher_key,
                "run_keys": [r.key for r in result.runs], "cached": result.cached}

    return work


def start_training(corpus: Corpus, tcfg: TeacherConfig, scfg: StudentConfig, dbase: DistillConfig,
                   lambdas: list[float], seeds: list[int], label: str) -> Job:
    """Train (or read from the caches) the teacher if needed, then every (λ, seed) run, in a background thread.

    Raises :class:`BatError` when the settings cannot train on this corpus (the page shows it)."""
    p = grid.plan(corpus, tcfg, scfg, dbase, lambdas, seeds)
    job = manager().start(Job(label=label, corpus_hash=corpus.hash, steps=p.steps), job_work(p, cache().root))
    st.session_state["job_id"] = job.id
    if p.needs_teacher:
        st.session_state["job_teacher_cfg"] = tcfg.to_dict()
    return job


def teacher_config_for(run: Run) -> TeacherConfig | None:
    """The teacher settings a BAT run was trained with (from its teacher metadata), to train more λ alike."""
    meta = run.config.get("teacher") or {}
    for cand in (meta.get("config"), meta.get("teacher"), meta.get("settings"), meta):
        if isinstance(cand, dict) and "mode" in cand and "model" in cand:
            try:
                return TeacherConfig.from_dict(cand)
            except (BatError, TypeError):
                continue
    saved = st.session_state.get("job_teacher_cfg")
    return TeacherConfig.from_dict(saved) if saved else None
