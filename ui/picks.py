"""What the user picks and the pages share: the settings family (one picker for Train, Compare and pyLDAvis), and
the λ and seed that Compare and pyLDAvis start from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from bat_core.config import DEFAULT_BAT_LAMBDA
from bat_core.explore.families import ordered
from bat_core.runs.store import Run
from ui import keys


def family_picker(fams: dict[str, list[Run]], saved: list[Run], key: str,
                  prefer: Callable[[list[Run]], bool] | None = None) -> list[Run]:
    """The runs of the family the user picks in "Settings" (newest first, the γ candidates the dev rule did not
    choose last; no picker when there is one family). It starts at the first family ``prefer`` accepts, else the
    first."""
    fam_keys, labels = ordered(fams, saved)
    if len(fam_keys) == 1:
        return fams[fam_keys[0]]
    default = next((i for i, fk in enumerate(fam_keys) if prefer is not None and prefer(fams[fk])), 0)
    return fams[st.selectbox("Settings", fam_keys, default, format_func=labels.get, key=key)]


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
