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
from bat_core.config import DistillConfig, StudentConfig, TeacherConfig, check_lambda, check_lambdas
from bat_core.data.corpus import Corpus
from bat_core.explore.wording import gamma_sentence, planned_teacher
from bat_core.runs.store import Run
from bat_core.teachers.choice import choice_line, teacher_name
from ui import estimates, keys, perf, prebuild, runs
from ui.jobs import Job, manager
from ui.live import GridWatch
from ui.runs import cache


def lambda_grid(values: list[Any]) -> tuple[list[float], list[str]]:
    """The λ to train from the Train page's choices: the λ = 0 baseline and every value that
    :func:`bat_core.config.check_lambda` accepts (sorted, once each), and what it said about the others."""
    lams, errors = [0.0], []
    for x in values:
        try:
            lams.append(check_lambda(x))
        except BatError as e:
            errors.append(str(e))
    return check_lambdas(lams), errors


def teacher_line(corpus: Corpus, tcfg: TeacherConfig) -> tuple[str, bool]:
    """(What produces the target with these settings, whether that teacher is trained): the trained teacher's name
    (``teacher_name``) when it is in the cache, else what the settings will do (``planned_teacher``)."""
    meta = runs.teacher_meta(corpus, tcfg)
    name = teacher_name(meta) if meta else ""
    return (name, True) if name else (planned_teacher(tcfg), False)


def teacher_note(step: grid.Step, tcfg: TeacherConfig, ahead: float | None = None, first_look: bool = False) -> str:
    """The job's line for the teacher step: trained or read, how long, and what it is (the choice line of a kNN
    teacher names it with its scores; any other is named by ``teacher_name``, with its dev perplexity). ``ahead``:
    the app was building it in the background when the job started, and the job waited that many seconds for it
    (``first_look``: that build trained the first look too)."""
    meta = step.teacher_meta or {}
    if ahead is not None:
        what = "teacher and the first look prepared" if first_look else "teacher built"
        note = (f"{what} in the background since the corpus loaded, ready {ahead + step.wall_time_s:.1f} s after "
                "Train")
    elif step.cached:
        note = f"teacher read from cache in {step.wall_time_s:.1f} s"
    else:
        note = f"teacher trained in {step.wall_time_s:.1f} s"
    line = choice_line(meta)
    if line:
        return f"{note}. {line}"
    note += f": {teacher_name(meta) or planned_teacher(tcfg)}"
    ppl, uni = meta.get("dev_perplexity"), meta.get("unigram_dev_perplexity")
    if isinstance(ppl, int | float):
        note += f" (dev perplexity {ppl:,.0f}" + (f" vs {uni:,.0f} for word frequencies alone"
                                                   if isinstance(uni, int | float) else "") + ")"
    return note


def member_note(step: grid.Step) -> str:
    assert step.run is not None
    return (f"{step.label}: test NPMI {step.run.metrics.get('test_npmi', float('nan')):.3f}"
            + (" (cached)" if step.cached else ""))


def job_work(p: grid.Plan, cache_dir: Path) -> Callable[[Job], dict[str, Any]]:
    """What the background job runs: ``bat_core.grid.execute`` with the job's progress and cancel hooks."""

    def work(job: Job) -> dict[str, Any]:
        ahead = prebuild.of(cache_dir, p.teacher_key)  # the app's background build of this teacher, if any
        ahead_running = ahead is not None and ahead.running
        mine = ahead is not None and ahead.covers(p)  # the background build trains this plan's early look
        covered = ahead_running and mine
        waited = 0.0

        def built_ahead() -> bool:  # the background build finished the teacher this job then read
            return ahead_running and ahead is not None and ahead.state == "done"

        def on_step(step: grid.Step) -> None:
            if isinstance(job.clock, estimates.Clock):
                job.clock.step(step)
            if step.gamma is not None:
                if ahead is not None and mine:
                    ahead.claimed = True  # its runs are this job's now: the pages follow the job's γ choice
                if isinstance(job.watch, GridWatch):
                    job.watch.choose(step.gamma)  # the pages switch from the first look to the chosen γ's runs
                job.next_step(gamma_sentence(step.gamma) + (" (runs read from cache)" if step.cached else ""))
            elif step.member is None:
                job.next_step(teacher_note(step, p.teacher, waited if built_ahead() else None,
                                           covered and built_ahead()))
            else:
                assert step.run is not None
                job.run_keys.append(step.run.key)
                job.next_step(member_note(step))

        perf.wait_warm()  # the app's background import of the teacher's code, if it is still running
        if covered:  # the app is preparing these very runs since the corpus loaded: wait, do not train them twice
            assert ahead is not None
            waited = ahead.wait(job.should_stop)
        result = grid.execute(p, cache_dir, job.progress, job.should_stop, on_step)
        return {"teacher_from_cache": result.teacher_cached, "teacher_key": p.teacher_key,
                "run_keys": [r.key for r in result.runs], "cached": result.cached}

    return work


def start_training(corpus: Corpus, tcfg: TeacherConfig, scfg: StudentConfig, dbase: DistillConfig,
                   lambdas: list[float], seeds: list[int], label: str) -> Job:
    """Train (or read from the caches) the teacher if needed, then every (λ, seed) run, in a background thread.

    Raises :class:`BatError` when the settings cannot train on this corpus (the page shows it)."""
    p = grid.plan(corpus, tcfg, scfg, dbase, lambdas, seeds)
    clock = estimates.Clock()  # the page's estimate of these settings (computed aside, never waited for)
    clock.pending = estimates.lookup(corpus, tcfg, scfg, dbase, lambdas, seeds, cache().root)
    clock.plan, clock.cache_dir = p, cache().root
    job = manager().start(Job(label=label, corpus_hash=corpus.hash, steps=p.steps, watch=GridWatch(p), clock=clock),
                          job_work(p, cache().root))
    st.session_state[keys.JOB_ID] = job.id
    if p.needs_teacher:
        st.session_state[keys.JOB_TEACHER_CFG] = tcfg.to_dict()
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
    saved = st.session_state.get(keys.JOB_TEACHER_CFG)
    return TeacherConfig.from_dict(saved) if saved else None
