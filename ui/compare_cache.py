"""What the Compare and pyLDAvis pages compute, cached per run so that moving the λ slider only looks things up.

Runs are immutable (a run key names one trained model for good), so everything here is keyed by run keys (a family
by the sorted keys of its runs) and never goes stale. Plain data (alignments, tables, the teacher's word shift,
download bytes) is in ``st.cache_data``; plotly figures are in ``st.cache_resource`` (returned as-is, no pickle
round trip; the pages only hand them to ``st.plotly_chart``, which does not change them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import streamlit as st

from bat_core.base.errors import BatError
from bat_core.data.corpus import Corpus
from bat_core.evaluation.align import align_topics
from bat_core.evaluation.coherence import coherence as coherence_of
from bat_core.evaluation.downstream import evaluate_runs
from bat_core.evaluation.metrics import top_words
from bat_core.explore import plots
from bat_core.explore.families import pair_rows, rule_reading
from bat_core.explore.teacher_effect import TeacherEffect, teacher_effect
from bat_core.explore.wording import gamma_sentence
from bat_core.runs import exports
from bat_core.runs.store import Run
from bat_core.training.selection import describe_gamma, gamma_choice
from ui import runs as run_reads

Pairs = list[tuple[int, int, float]]


def npmi_per_topic(run: Run) -> np.ndarray:
    return np.asarray(run.metrics.get("test_npmi_per_topic") or [np.nan] * run.n_topics, dtype=float)


def family_sig(runs: list[Run]) -> tuple[str, ...]:
    """What names a family for the caches: the sorted keys of its runs (a new run makes a new signature)."""
    return tuple(sorted(r.key for r in runs))


@st.cache_data(max_entries=512, show_spinner=False)
def aligned(key_a: str, key_b: str, _a: Run, _b: Run) -> Pairs:
    """``align_topics`` of two runs (JSD, optimal one-to-one), once per pair of run keys."""
    return align_topics(_a.beta, _b.beta)


@st.cache_data(max_entries=512, show_spinner=False)
def pair_table(key_a: str, key_b: str, _a: Run, _b: Run) -> list[dict]:
    """``explore.families.pair_rows`` for two runs: the aligned pairs with words, NPMI, JSD and closeness."""
    return pair_rows(aligned(key_a, key_b, _a, _b), _a.topics, _b.topics, npmi_per_topic(_a), npmi_per_topic(_b))


@st.cache_data(max_entries=512, show_spinner=False)
def coherence(key: str, corpus_hash: str, reference_id: str, _run: Run, _corpus: Corpus,
              _reference: sp.spmatrix | None = None) -> dict:
    """NPMI of the run's top 10 words against the test split, the whole corpus and the uploaded reference (counts
    over the corpus vocabulary, named by ``reference_id``; "" and None without one), the share of top-word pairs each
    saw together, the top words' mean document frequency and whether the test split is too sparse to read
    (``bat_core.evaluation.coherence``), once per run key, corpus and reference."""
    return coherence_of(top_words(_run.beta, 10), _corpus.split_counts("test"), _corpus.counts, _reference)


@st.cache_data(max_entries=256, show_spinner=False)
def pairs_csv(key_a: str, key_b: str, _a: Run, _b: Run) -> bytes:
    return exports.aligned_pairs_csv(_a, _b, aligned(key_a, key_b, _a, _b))


@st.cache_resource(max_entries=256, show_spinner=False)
def fig_topic_npmi(key_a: str, key_b: str, name_b: str, _a: Run, _b: Run):
    rows = pair_table(key_a, key_b, _a, _b)
    return plots.topic_npmi_pairs(aligned(key_a, key_b, _a, _b), npmi_per_topic(_a), npmi_per_topic(_b),
                                  name_b=name_b, close=[r["close"] for r in rows])


@st.cache_resource(max_entries=256, show_spinner=False)
def fig_history(key_a: str, key_b: str, name_b: str, _a: Run, _b: Run, metric: str = "dev_npmi"):
    return plots.training_history({"Baseline (λ=0)": _a.history, name_b: _b.history}, metric)


def _frame(_runs: list[Run], on: str, npmi: Callable[[Run], float] | None):
    """The runs' metrics with the NPMI the page says to read: the test split's (stored with each run) or, when it is
    too sparse, ``npmi`` of each run (against the whole corpus or the reference)."""
    df = plots.metrics_frame(_runs)
    if on != "test" and npmi is not None:
        by_key = {r.key: npmi(r) for r in _runs}
        df["npmi"] = df["key"].map(by_key)
    return df


@st.cache_resource(max_entries=256, show_spinner=False)
def fig_seed_summary(sig: tuple[str, ...], lam: float, on: str, reference_id: str, _runs: list[Run],
                     _npmi: Callable[[Run], float] | None = None):
    """``on``: the NPMI plotted ("test", "corpus" or "reference", named by ``reference_id``), from ``_npmi``."""
    return plots.seed_summary(_frame(_runs, on, _npmi), lam, npmi_on=NPMI_ON[on])


@st.cache_resource(max_entries=256, show_spinner=False)
def fig_lambda_sweep(sig: tuple[str, ...], lam: float, on: str, reference_id: str, _runs: list[Run],
                     _npmi: Callable[[Run], float] | None = None):
    return plots.lambda_sweep(_frame(_runs, on, _npmi), current=lam, npmi_on=NPMI_ON[on])


NPMI_ON = {"test": "test split", "corpus": "whole corpus", "reference": "reference"}  # how the charts name each


@st.cache_data(max_entries=64, show_spinner=False)
def gamma_line(sig: tuple[str, ...], saved_sig: tuple[str, ...], bat_gamma: float, bat_fade: float,
               _fruns: list[Run], _saved: list[Run]) -> tuple[str, str]:
    """Which background correction γ (and fade) the dev rule chose for these runs' settings, in one sentence (or
    that these runs use another γ), and the rule with every candidate's scores; ("", "") when none was chosen here
    (fewer than two candidates trained)."""
    found = rule_reading(_fruns, _saved)
    if found is None:
        return "", ""
    choice = gamma_choice(*found)
    if np.isclose(choice["gamma"], bat_gamma) and np.isclose(choice["fade"], bat_fade):
        return gamma_sentence(choice), describe_gamma(choice)
    mine = f"γ = {bat_gamma:g}" + (f", λ fading over the last {bat_fade:.0%} of the epochs" if bat_fade else "")
    theirs = f"γ = {choice['gamma']:g}" + (", teacher faded" if choice["fade"] else "")
    return (f"These runs use background correction {mine}; for these settings the rule on dev data "
            f"({len(choice['rows'])} candidates trained at λ = {choice['lam']:g}) chose {theirs}: pick that "
            "family in Settings above for the default runs."), describe_gamma(choice)


@st.cache_data(max_entries=64, show_spinner="Fitting a classifier on θ of every run of these settings…")
def downstream(sig: tuple[str, ...], corpus_hash: str, labels_from: str, _corpus: Corpus, _runs: list[Run],
               _labels: list) -> tuple[list[dict], str]:
    """Accuracy and macro-F1 of a logistic regression on each run's θ, or why there are none (too few classes, …)."""
    try:
        return evaluate_runs(_corpus, _runs, _labels), ""
    except BatError as e:
        return [], str(e)


@st.cache_resource(max_entries=64, show_spinner=False)
def fig_downstream(sig: tuple[str, ...], lam: float, scores: tuple[tuple[float, int, float, float], ...]):
    return plots.downstream_sweep([dict(zip(("lam", "seed", "accuracy", "macro_f1"), r, strict=True))
                                   for r in scores], current=lam)


@st.cache_data(max_entries=64, show_spinner="Summing the teacher's targets over the training split…")
def word_shift(teacher_key: str, corpus_hash: str, temperature: float, n: int, _corpus: Corpus) -> TeacherEffect | None:
    """The words whose share the teacher's targets raise / lower most over the training split (None: no logits)."""
    store = run_reads.teacher_logits(teacher_key)
    if store is None or store.n_docs != _corpus.n_docs:
        return None
    return teacher_effect(store.dense, _corpus.counts, _corpus.splits["train"], _corpus.vocab,
                          temperature=temperature, n=n)


@st.cache_resource(max_entries=64, show_spinner=False)
def fig_word_shift(teacher_key: str, corpus_hash: str, temperature: float, n: int, _corpus: Corpus):
    eff = word_shift(teacher_key, corpus_hash, temperature, n, _corpus)
    return None if eff is None else plots.teacher_shift_bar(eff.raised, eff.lowered)


_warmed: set[tuple] = set()
_warm_lock = threading.Lock()


def warm(fruns: list[Run], seed: int, name_b: Callable[[float], str]) -> bool:
    """Fill the per-run caches of every other trained λ of this family and seed in a background thread, once, so the
    first move of the slider to any of them is a lookup too. True when a thread was started."""
    key = (family_sig(fruns), seed)
    with _warm_lock:
        if key in _warmed:
            return False
        _warmed.add(key)
    base = next((r for r in fruns if r.lam == 0 and r.seed == seed), None)
    others = [r for r in fruns if r.lam > 0 and r.seed == seed]

    def work() -> None:
        for r in others if base is not None else []:
            time.sleep(0.05)  # gentle: a rerun the user started gets the CPU first
            try:
                pair_table(base.key, r.key, base, r)
                fig_topic_npmi(base.key, r.key, name_b(r.lam), base, r)
            except Exception:  # noqa: BLE001 (a warm-up only: the page computes it itself when it is needed)
                return

    threading.Thread(target=work, name="bat-compare-warm", daemon=True).start()
    return True
