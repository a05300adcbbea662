"""What the user picks and the pages share: the settings family (one picker for Train, Compare and pyLDAvis), and
the λ and seed that Compare and pyLDAvis start from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from bat_core.config import DEFAULT_BAT_LAMBDA
from bat_core.explore.families import UNCHOSEN_NOTE, family_key, ordered
from bat_core.runs.store import Run
from ui import keys
from ui.live import GridWatch


def family_picker(fams: dict[str, list[Run]], saved: list[Run], key: str,
                  prefer: Callable[[list[Run]], bool] | None = None, watch: GridWatch | None = None,
                  job_id: str = "") -> list[Run]:
    """The runs of the family the user picks in "Settings" (newest first, the γ candidates the dev rule did not
    choose last; no picker when there is one family). It starts at the first family ``prefer`` accepts, else the
    first.

    ``watch`` (a job's plan, running or ended: ``ui.progress.job_watch``; ``job_id`` its job): the picker moves, once
    each, to the job's first look while γ is being chosen, then to the chosen γ's family (:meth:`GridWatch.showing`),
    also when the job ended before the page was drawn again; in between the user's pick stands.
    While γ is pending, its candidates' families say so instead of being called unchosen."""
    fam_keys, labels = ordered(fams, saved)
    follow = _follow(watch, saved) if watch is not None else None
    if watch is not None and watch.gamma_pending:
        pending = watch.candidate_keys()
        for fk in fam_keys:
            if any(r.key in pending and r.lam > 0 for r in fams[fk]):
                labels[fk] = labels[fk].removesuffix(UNCHOSEN_NOTE) + PENDING_NOTE
    if len(fam_keys) == 1:
        return fams[fam_keys[0]]
    default = next((i for i, fk in enumerate(fam_keys) if prefer is not None and prefer(fams[fk])), 0)
    if follow is not None and follow[1] in fams:
        default = fam_keys.index(follow[1])
        tag = f"{job_id}:{follow[0]}"
        if st.session_state.get(keys.followed(key)) != tag:
            st.session_state[keys.followed(key)] = tag
            if key in st.session_state:  # drawn before: move it (the value set here is the one it shows)
                st.session_state[key] = follow[1]
                default = 0
    return fams[st.selectbox("Settings", fam_keys, default, format_func=labels.get, key=key)]


PENDING_NOTE = " · a γ candidate (γ not chosen yet)"


def _follow(watch: GridWatch, saved: list[Run]) -> tuple[str, str] | None:
    """(why, family key) of the family a running job's pages should show now (see :meth:`GridWatch.showing`)."""
    found = watch.showing({r.key for r in saved})
    run = next((r for r in saved if found is not None and r.key == found[1]), None)
    return (found[0], family_key(run)) if found is not None and run is not None else None


def picked() -> tuple[float | None, int | None]:
    """The λ and seed last picked on Compare or pyLDAvis (None before any)."""
    return st.session_state.get(keys.SEL_LAM), st.session_state.get(keys.SEL_SEED)


def remember(lam: float | None, seed: int) -> None:
    """Keep the λ (None: keep the last one) and the seed the page shows, for the other page to start from."""
    if lam is not None:
        st.session_state[keys.SEL_LAM] = lam
    st.session_state[keys.SEL_SEED] = seed


def shows(runs: list[Run], lam: float | None, seed: int | None) -> bool:
    """Whether ``runs`` hold a run at this λ and seed (the family a page should start on)."""
    return lam is not None and any(np.isclose(r.lam, lam) and r.seed == seed for r in runs)


def train_lambda_here(lam: float) -> None:
    """A λ was just sent to train from the Compare page: its slider moves to it once it is trained."""
    st.session_state[keys.CMP_PENDING_LAM] = float(lam)


def compare_lambda(lams: list[float], job_running: bool) -> None:
    """Set the Compare slider's λ before it is drawn: a λ trained from there once it is ready; else the λ it showed,
    if still trained; else the λ picked on another page; else the only one or the one nearest the default BAT λ."""
    state = st.session_state
    pending = state.get(keys.CMP_PENDING_LAM)
    if pending is not None and any(np.isclose(pending, x) for x in lams):
        state[keys.CMP_LAM] = next(x for x in lams if np.isclose(pending, x))
        del state[keys.CMP_PENDING_LAM]
    elif pending is not None and not job_running:
        del state[keys.CMP_PENDING_LAM]  # the job failed or was cancelled
    if state.get(keys.CMP_LAM) not in lams:
        prev, _ = picked()
        state[keys.CMP_LAM] = prev if prev in lams else lams[-1] if len(lams) == 1 else \
            min(lams, key=lambda x: abs(x - DEFAULT_BAT_LAMBDA))


def compare_seed(seeds: list[int]) -> None:
    """Set the Compare seed box before it is drawn: the seed it showed if λ has it, else the one picked on another
    page, else the first."""
    if st.session_state.get(keys.CMP_SEED) not in seeds:
        _, prev = picked()
        st.session_state[keys.CMP_SEED] = prev if prev in seeds else seeds[0]
