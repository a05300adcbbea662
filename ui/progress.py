"""Showing a background job: a live panel with a cancel button, the outcome when it ends, a bar in the sidebar."""

from __future__ import annotations

import streamlit as st

from bat_core.base.progress import ProgressEvent
from ui import keys
from ui.jobs import Job, manager

# How often the panels refresh while a job runs. Every refresh is a script run on the server and a re-render in the
# browser, and both share the cores with the training: with the panel every 1 s and the sidebar every 2 s, headless
# Chromium alone used ~14% of one core through a demo grid (2-core VM). 2 s / 5 s still read as live.
PANEL_EVERY_S = 2.0
SIDEBAR_EVERY_S = 5.0


def last_job() -> Job | None:
    """The job this session started last (None when it started none, or the server forgot it)."""
    return manager().get(st.session_state.get(keys.JOB_ID))


def session_job() -> Job | None:
    """The job this session started last, or whichever job is running on the server."""
    return last_job() or manager().active()


def _event_line(job: Job, ev: ProgressEvent) -> str:
    parts = [f"**{ev.stage}**", f"{ev.done}/{ev.total}"]
    if ev.message:
        parts.append(ev.message)
    m = ev.metrics
    if "loss" in m:
        parts.append(f"loss {m['loss']:.4g}")
    if m.get("dev_npmi") is not None:
        parts.append(f"dev NPMI {m['dev_npmi']:.3f}")
    best = job.best.get(ev.stage)
    if best is not None:
        parts.append(f"best {best:.3f}")
    for k, v in m.items():
        if k not in ("loss", "dev_npmi", "best_dev_npmi") and isinstance(v, int | float):
            parts.append(f"{k.replace('_', ' ')} {v:.4g}")
    return " · ".join(parts)


def _rerun_once_when_done(job: Job, key: str) -> bool:
    """When the job has ended, rerun the whole page once (so new runs show up); True if it has ended."""
    if job.running:
        return False
    if st.session_state.get(keys.seen(key)) != job.id:
        st.session_state[keys.seen(key)] = job.id
        st.rerun(scope="app")
    return True


def job_panel(job: Job, key: str) -> None:
    """Live progress of a background job (refreshed every ``PANEL_EVERY_S``) with a cancel button."""

    @st.fragment(run_every=PANEL_EVERY_S)
    def _panel() -> None:
        if _rerun_once_when_done(job, key):
            return
        with st.status(f"{job.label} · {job.elapsed:,.0f} s", expanded=True, state="running"):
            n = len(job.steps)
            st.progress(job.fraction, text=f"Step {min(job.step + 1, n)} of {n}")
            if job.event is not None:
                st.markdown(_event_line(job, job.event))
            for note in job.notes[-6:]:
                st.caption("✓ " + note)
        if job.cancelling:
            st.button("Cancelling…", disabled=True, key=f"{key}_cancel_wait")
        elif st.button("Cancel", key=f"{key}_cancel"):
            job.cancel()

    _panel()


def job_outcome(job: Job | None) -> None:
    """What happened to the last job: nothing while it runs; success, cancel or error (with the engine's words)."""
    if job is None or job.running:
        return
    if job.state == "done":
        notes = "\n".join(f"- {n}" for n in job.notes[-8:])
        st.success(f"**{job.label}: finished in {job.elapsed:,.1f} s.**\n\n{notes}")
    elif job.state == "cancelled":
        st.warning(f"{job.label}: cancelled after {job.elapsed:,.1f} s; finished runs were kept.")
    else:
        st.error(job.error or "training failed")
        if job.detail:
            with st.expander("Technical details"):
                st.code(job.detail)


def sidebar_job(job: Job) -> None:
    """Progress of the running job on every page; when it ends, the page reruns to show the new runs."""

    @st.fragment(run_every=SIDEBAR_EVERY_S)
    def _progress() -> None:
        if _rerun_once_when_done(job, "sidebar"):
            return
        st.markdown("### Training")
        st.progress(job.fraction, text=f"{job.label}: {job.fraction:.0%}")

    _progress()
