"""Showing a background job: a live panel with a cancel button, the outcome when it ends, a bar in the sidebar."""

from __future__ import annotations

from typing import Any

import streamlit as st

from bat_core.base.progress import ProgressEvent
from bat_core.data.corpus import Corpus
from ui import estimates, keys, runs
from ui.estimates import Clock, duration
from ui.jobs import Job, manager
from ui.live import GridWatch
from ui.prebuild import Prebuild
from ui.text import md_escape

# How often the panels refresh while a job runs. Every refresh is a script run on the server and a re-render in the
# browser, and both share the cores with the training: with the panel every 1 s and the sidebar every 2 s, headless
# Chromium alone used ~14% of one core through a demo grid (2-core VM). 2 s / 5 s still read as live.
PANEL_EVERY_S = 2.0
SIDEBAR_EVERY_S = 5.0
# While a job's first results are awaited (γ being chosen: the first look, then the switch to the chosen γ), the line
# that watches the run cache looks every second: a run that lands shows up to 1 s sooner, and that tick is one small
# element (the page itself reruns only when a run lands).
FIRST_LOOK_EVERY_S = 1.0


def last_job() -> Job | None:
    """The job this session started last (None when it started none, or the server forgot it)."""
    return manager().get(st.session_state.get(keys.JOB_ID))


def session_job() -> Job | None:
    """The job running on the server (one at a time), else the job this session started or watched last. A running
    job is adopted as this session's: a page reloaded (a new session) while it ran then still shows how it ended;
    it showed nothing once the job stopped."""
    job = manager().active()
    if job is not None:
        if st.session_state.get(keys.JOB_ID) != job.id:  # another session's job: what this one kept of its own goes
            st.session_state.pop(keys.CMP_PENDING_LAM, None)  # a λ sent from Compare by a job that ended
            st.session_state.pop(keys.JOB_TEACHER_CFG, None)
            st.session_state[keys.JOB_ID] = job.id
        return job
    return last_job()


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


def live_watch(job: Job | None, corpus: Corpus) -> GridWatch | None:
    """The plan of the training job running on this corpus, to follow while it runs (None when none runs here)."""
    return job_watch(job, corpus) if job is not None and job.running else None


def job_watch(job: Job | None, corpus: Corpus) -> GridWatch | None:
    """The plan of this session's last training job on this corpus, running or ended: the family pickers follow it
    (``picks.family_picker``), and a move the page had no chance to make while the job ran is made once after it
    (a job whose γ step and last runs land between two refreshes of the page left the picker on its first look)."""
    if job is None or job.corpus_hash != corpus.hash or not isinstance(job.watch, GridWatch):
        return None
    return job.watch


def live_line(job: Job, present: frozenset[str] | None = None) -> str:
    """"Training: <what is training now> · <n> of <N> runs done" for a training job ("" for any other job)."""
    if not isinstance(job.watch, GridWatch):
        return ""
    return job.watch.line(runs.present_keys() if present is None else present, teacher_ready=job.step > 0)


def _landed(job: Job) -> tuple[frozenset[str], bool]:
    """What a page following ``job`` drew from: the run keys in the cache, and whether γ was still pending."""
    return runs.present_keys(), isinstance(job.watch, GridWatch) and job.watch.gamma_pending


def _rerun_when_runs_land(job: Job, seen: tuple[frozenset[str], bool]) -> frozenset[str]:
    """Rerun the whole page when the run cache holds other runs than the page last drew (runs are saved as each
    stack finishes, so its tables and charts fill in while the job runs) or γ was chosen since (the page moves to
    the chosen γ's runs); the keys there now otherwise."""
    now = _landed(job)
    if now != seen:
        st.rerun(scope="app")
    return now[0]


def job_panel(job: Job, key: str, follow: bool = False) -> None:
    """Live progress of a background job (refreshed every ``PANEL_EVERY_S``) with a cancel button. ``follow``: the
    whole page reruns whenever one of the job's runs lands (for pages that show the runs)."""
    seen = _landed(job) if follow else (frozenset(), False)

    @st.fragment(run_every=PANEL_EVERY_S)
    def _panel() -> None:
        if _rerun_once_when_done(job, key):
            return
        present = _rerun_when_runs_land(job, seen) if follow else None
        # Written through the container's methods, not `with`: leaving a status's `with` block marks it complete
        # (a ✓ in its header), which would tell the user a running job had finished.
        box = st.status(f"{job.label} · {job.elapsed:,.0f} s", expanded=True, state="running")
        n = len(job.steps)
        box.progress(job.fraction, text=f"Step {min(job.step + 1, n)} of {n}")
        line = live_line(job, present) if follow else ""  # pages that follow a job say what trains, runs done
        if isinstance(job.clock, Clock):  # elapsed, runs trained (unless the line counts them), an ETA as runs land
            box.caption(job.clock.line(job.elapsed, runs=not line, at_least=job.stage_left()))
        if line:
            box.markdown(line)
        if job.event is not None:
            box.markdown(_event_line(job, job.event))
        for note in job.notes[-6:]:
            box.caption("✓ " + note)
        if job.cancelling:
            st.button("Cancelling…", disabled=True, key=f"{key}_cancel_wait")
        elif st.button("Cancel", key=f"{key}_cancel"):
            job.cancel()

    _panel()


def live_status(job: Job, key: str) -> None:
    """One line on what the running job is training and how many of its runs are done, refreshed every
    ``PANEL_EVERY_S`` (``FIRST_LOOK_EVERY_S`` while γ is being chosen); the whole page reruns when a run lands, and
    once when the job ends."""
    seen = _landed(job)

    @st.fragment(run_every=FIRST_LOOK_EVERY_S if seen[1] else PANEL_EVERY_S)
    def _line() -> None:
        if _rerun_once_when_done(job, key):
            return
        st.info(live_line(job, _rerun_when_runs_land(job, seen)))

    _line()


def prebuild_line(build: Prebuild) -> None:
    """One short line under the teacher settings: the teacher (and the first look of the default settings) is being
    prepared in the background (refreshed until it is ready; then the page reruns, and reads it from the cache), or
    it is ready. Nothing after a failure (the Train job meets the same error and reports it) or when a training of
    another teacher, or another corpus, stopped it."""
    if build.state in ("error", "cancelled"):
        return
    what = ("a first look with the default settings (the first seed's baseline and one BAT run), and the teacher"
            if build.first_look else "the teacher")
    if not build.running:
        st.caption(f"✓ Ready: prepared in the background in {build.elapsed:.0f} s, after the corpus was loaded: "
                   f"{what}.")
        return

    @st.fragment(run_every=PANEL_EVERY_S)
    def _line() -> None:
        if not build.running:
            st.rerun(scope="app")
        ev = build.event
        where = f"; {ev.stage} {ev.done}/{ev.total}" if ev is not None and ev.total else ""
        st.caption(f"Being prepared in the background since the corpus was loaded ({build.elapsed:.0f} s{where}): "
                   f"{what}. Train will use it.")

    _line()


def prepared_look(build: Prebuild) -> None:
    """For a page with nothing to show while the background build trains the default settings' first look: a line
    that says so, refreshed, and one rerun of the page when that look is on disk or the build has ended."""

    @st.fragment(run_every=PANEL_EVERY_S)
    def _line() -> None:
        if not build.running or build.first_look <= runs.present_keys():
            st.rerun(scope="app")
        st.info(f"Nothing to compare yet: a first look with the Train page's default settings (the first seed's "
                f"baseline and one BAT run) is being trained in the background since the corpus was loaded "
                f"({build.elapsed:.0f} s). It shows here as soon as those two runs are on disk; Train trains the rest.")

    _line()


def job_outcome(job: Job | None, corpus: Corpus) -> None:
    """What happened to the last job: nothing while it runs; success, cancel or error (with the engine's words).
    A job of another corpus gets one line: its scores next to this corpus's runs would read as this corpus's."""
    if job is None or job.running:
        return
    if job.corpus_hash != corpus.hash:
        how = {"done": f"finished in {job.elapsed:,.1f} s",
               "cancelled": f"cancelled after {job.elapsed:,.1f} s"}.get(job.state, "failed")
        st.caption(f"{md_escape(job.label)}: {how}. It trained another corpus: load that corpus on the Corpus page "
                   "to see its runs.")
        return
    if job.state == "done":
        shown = job.notes if len(job.notes) <= 8 else [*job.notes[:2], f"… {len(job.notes) - 7} more", *job.notes[-5:]]
        notes = "\n".join(f"- {n}" for n in shown)  # the teacher and the γ choice first, then the last runs
        took = ""
        if isinstance(job.clock, Clock) and job.clock.estimate is not None:
            took = f" (estimated about {duration(job.clock.estimate.total_s)} before it started)"
        st.success(f"**{job.label}: finished in {job.elapsed:,.1f} s{took}.**\n\n{notes}")
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


def estimate_line(corpus: Corpus, settings: tuple, cache_dir: Any) -> None:
    """The plan's time estimate on this machine, in one caption under the plan: the plan and its estimate are computed
    in the background (:mod:`ui.estimates`; the first time on a machine it measures speeds), "estimating…" meanwhile,
    then the page reruns once to show it."""
    pending = estimates.lookup(corpus, *settings, cache_dir)
    if pending.state == "done":
        st.caption(pending.estimate.sentence())
        return
    if pending.state == "error":
        st.caption("No time estimate for this plan on this machine.")
        return
    if pending.state == "refused":  # the settings cannot train: Train says why
        return

    @st.fragment(run_every=1.0)
    def _line() -> None:
        if pending.state != "running":
            st.rerun(scope="app")
        st.caption("Estimating the time on this machine…")

    _line()
