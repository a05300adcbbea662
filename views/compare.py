"""Compare page: the student at λ next to the λ = 0 baseline, topics aligned by Jensen–Shannon divergence."""

import numpy as np
import streamlit as st

from bat_core.base.errors import BatError
from bat_core.config import DistillConfig, StudentConfig
from bat_core.evaluation.coherence import which_to_read
from bat_core.explore.families import (
    CLOSE_MIN_SHARED,
    CLOSE_TOP_N,
    comparable,
    fade,
    families,
    gamma,
    pick,
    run_label,
    settings_line,
    teacher_is_weak,
)
from bat_core.runs.store import Run
from bat_core.teachers.choice import choice_line
from ui import compare_cache as cc
from ui import compare_views, keys, perf, picks, prebuild, progress, reference, runs, state, tables, training
from ui.defaults import default_teacher, next_lambda
from ui.exports import export_buttons

st.title("Compare: baseline vs BAT")
st.caption("Slide λ to see what the teacher changes: the student trained at that λ next to the λ = 0 baseline "
           "(same seed), topic by topic.")
corpus = state.require_corpus()

job = progress.session_job()
watch = progress.live_watch(job, corpus)  # a job training on this corpus: the page follows it as its runs land
if watch is not None:
    progress.live_status(job, "cmp_live")
saved = runs.all_runs(corpus)
fams = comparable(families(saved))
if not fams:
    if job is not None and job.running:
        progress.job_panel(job, "cmp_panel")
    else:
        progress.job_outcome(job, corpus)
    ahead_build = prebuild.status(corpus, default_teacher())
    if watch is not None:
        st.info("Nothing to compare yet: the aligned topics show here as soon as the baseline and a first BAT run "
                "are trained (this page updates itself).")
    elif ahead_build is not None and ahead_build.running and ahead_build.first_look:
        progress.prepared_look(ahead_build)
    else:
        st.info("Nothing to compare yet: train the λ = 0 baseline and at least one λ > 0 on this corpus.")
        st.page_link("views/train.py", label="Go to Train →")
    st.stop()

# ------------------------------------------------------------------------------------------------ pickers
# newest first, the γ candidates not chosen last; while a job runs: its first look, then the chosen γ's runs
fruns = picks.family_picker(fams, saved, keys.CMP_FAMILY, watch=progress.job_watch(job, corpus),
                            job_id=job.id if job is not None else "")
lams = sorted({r.lam for r in fruns if r.lam > 0})
base_seeds = {r.seed for r in fruns if r.lam == 0}

picks.compare_lambda(lams, job is not None and job.running)
c1, c2 = st.columns([3, 1])
lam = c1.select_slider("λ: weight of the teacher's target in the loss (trained values)", lams, key=keys.CMP_LAM,
                       format_func=lambda x: f"{x:g}", persist_state="session")
if len(lams) == 1:
    c1.caption("Only one λ trained so far: the slider grows as the running job's runs land." if watch is not None
               else "Only one λ trained so far: add values with “Train another λ” below and the slider grows.")
seeds = sorted(base_seeds & {r.seed for r in fruns if np.isclose(r.lam, lam)})
if not seeds:
    st.warning(f"λ = {lam:g} and the baseline share no seed; train the baseline with the same seeds.")
    st.stop()
picks.compare_seed(seeds)
seed = c2.selectbox("Seed (same for both)", seeds, key=keys.CMP_SEED, persist_state="session")
picks.remember(lam, seed)

base = pick(fruns, 0.0, seed)
bat = pick(fruns, lam, seed)
provisional = watch is not None and watch.provisional(bat.key)  # a γ candidate while the job still chooses γ
ahead = prebuild.ahead_of(bat.key) if watch is None else None  # trained when the corpus loaded, before any Train
provisional = provisional or ahead is not None
name_b = f"BAT (λ={lam:g}, γ={gamma(bat):g}, provisional)" if provisional else run_label(bat)
# a run on the teacher auto builds when the encoder loses, trained before auto chose: the message below names it
early_in_job = watch is not None and provisional and watch.early is not None and bat.key == watch.early.key
early_run = early_in_job or (ahead is not None and bat.key in ahead.first_look)
_t = bat.config.get("teacher") or {}
_what = _t.get("description") or "nearest neighbours by shared words"  # the teacher this run read
if early_in_job:
    st.warning(f"**Provisional**: the default teacher is still being chosen. This BAT run (γ = {gamma(bat):g}) was "
               f"trained first with {_what}: the teacher the default builds when the encoder does not help (as on "
               "every corpus measured so far), and it needs no encoding. When the default chooses it, this run is "
               "its run too; the page switches to the default teacher's runs when they land.")
elif ahead is not None:
    _on = "" if not early_run else (
        f" on {_what} (the teacher the default builds when the encoder does not help; it needs no encoding)")
    st.info(f"**Prepared when the corpus loaded**, before any Train: the first seed's baseline and this BAT run "
            f"(λ = {lam:g}, γ = {gamma(bat):g}){_on}, with the Train page's default settings, so that there is "
            f"something to look at at once. γ = {gamma(bat):g} is the first candidate of the γ step, not a choice "
            "yet: Train with the defaults chooses γ on dev data and trains the other λ and seeds (these runs are "
            "reused).")
elif provisional:
    st.warning(f"**Provisional**: γ is not chosen yet. This is the γ = {gamma(bat):g} candidate, trained first so that "
               "there is something to look at; the page switches to the chosen γ's runs when they land.")
st.caption(settings_line(bat))
_choice = choice_line(_t)  # (not for an early run: its teacher was set by the early look, not chosen by auto)
if _choice and not teacher_is_weak(_t) and not early_run:
    st.info(_choice)
_gamma_line, _gamma_rule = ("", "") if provisional else cc.gamma_line(
    cc.family_sig(fruns), cc.family_sig(saved), gamma(bat), fade(bat), fruns, saved)
if _gamma_line:
    st.caption(_gamma_line)
    with st.expander("How γ was chosen: the rule and every candidate"):
        st.caption(_gamma_rule)
if teacher_is_weak(_t):
    st.warning("This teacher predicts held-out documents no better than word frequencies alone (dev perplexity "
               f"{_t['dev_perplexity']:,.0f} vs {_t['unigram_dev_perplexity']:,.0f}): it has little to teach, and "
               "distilling from it is unlikely to help. Try the knn head, or a longer max length.")

# ------------------------------------------------------------------------------------------ train another λ
# open while a λ sent from here trains (its progress and cancel button are inside); the line at the top says the rest
from_here = bool(job and job.running and st.session_state.get(keys.CMP_PENDING_LAM) is not None)
with st.expander("Train another λ with these settings", expanded=from_here):
    if from_here:
        progress.job_panel(job, "cmp_panel")
    elif job is not None and job.running:  # no second live panel under a closed expander: the line at the top says it
        st.caption("A training is running; when it ends, you can train another λ here. Its progress and Cancel button "
                   "are on the Train page.")
    else:
        e1, e2 = st.columns([1, 2])
        new_lam = e1.number_input("λ", 0.01, 1.0, next_lambda(lams, lam), 0.05, key="cmp_new_lam", format="%.2f",
                                  help="Offered: the first λ of the default grid not trained yet, else the point "
                                       "halfway to the next trained λ above the slider's")
        fam_seeds = sorted(base_seeds)
        e2.caption(f"Trains λ = {new_lam:g} for seed(s) {', '.join(map(str, fam_seeds))} with the settings above "
                   "(K, epochs, T, c, teacher), in the background; the view updates when it finishes.")
        tcfg = training.teacher_config_for(bat)
        if st.button(f"Train λ = {new_lam:g}", key="cmp_train", disabled=tcfg is None):
            try:
                scfg = StudentConfig.from_stored(bat.config["student"])
                dcfg = DistillConfig.from_stored(bat.config["distill"])  # the γ these runs used, not a new choice
                training.start_training(corpus, tcfg, scfg, dcfg, [0.0, float(new_lam)], fam_seeds,
                                        label=f"Training λ = {new_lam:g}")
                picks.train_lambda_here(new_lam)
                st.rerun()
            except BatError as e:
                st.error(str(e))
        if tcfg is None:
            st.caption("The teacher settings of these runs are unknown; train from the Train page instead.")
        progress.job_outcome(job, corpus)

# ----------------------------------------------------------------------------------------------- alignment
# everything below is looked up per run key (ui.compare_cache): moving the slider to a trained λ computes nothing twice
rows = cc.pair_table(base.key, bat.key, base, bat)
won, n_close = tables.wins(rows)

coh_base, coh_bat, test_sparse = compare_views.coherence_pair(base, bat, corpus)
m = st.columns(5)
m[0].metric("Baseline NPMI (test)", f"{base.metrics['test_npmi']:.3f}")
m[1].metric(f"{name_b} NPMI (test)", f"{bat.metrics['test_npmi']:.3f}",
            compare_views.test_npmi_delta(base, bat, test_sparse))  # no arrow on a test split too sparse to judge
m[2].metric("Baseline uniqueness", f"{base.metrics['tu']:.3f}")
m[3].metric(f"{name_b} uniqueness", f"{bat.metrics['tu']:.3f}", f"{bat.metrics['tu'] - base.metrics['tu']:+.3f}")
m[4].metric("Aligned pairs won by BAT", f"{won} of {n_close}",
            help="Of the pairs that are close counterparts (at least 2 of the top 10 words shared), those where the "
                 "BAT topic has the higher per-topic NPMI on the test split")
ref = reference.current(corpus)
compare_views.coherence_row(coh_base, coh_bat, test_sparse, name_b, ref)
ref_id, ref_counts = (ref.id, ref.counts) if ref is not None else ("", None)


def run_coherence(run: Run) -> dict:
    return cc.coherence(run.key, corpus.hash, ref_id, run, corpus, ref_counts)


def family_npmi_on() -> str:
    """The NPMI the family's charts plot: the one the line above says to read (the test split's, unless it is too
    sparse), decided once for the family: by the pair on show, moving the slider could switch every curve's meaning.
    Asked only when a chart of the family is open (it scores every run of the family)."""
    family_sparse = test_sparse or any(run_coherence(r)["test_sparse"] for r in fruns)
    return which_to_read(family_sparse, compare_views.seen(coh_base, coh_bat, "reference")
                         if compare_views.has_reference(coh_base, coh_bat, ref) else None,
                         compare_views.seen(coh_base, coh_bat, "corpus"))


st.subheader("Aligned topics")
st.caption(tables.LEGEND, unsafe_allow_html=True)
st.markdown(tables.aligned_table(rows, "Baseline (λ=0)", name_b), unsafe_allow_html=True)
if n_close < len(rows):
    st.caption(f"{len(rows) - n_close} of {len(rows)} pairs share fewer than {CLOSE_MIN_SHARED} of their top "
               f"{CLOSE_TOP_N} words: the matching had to pair them, but they have **no close counterpart** in the "
               "other model (greyed, not counted as won or lost).")

# ------------------------------------------------------------------------------------------------- charts
# lazy tabs: only the open tab's content is built (and it is cached per run key)
TABS = ["Per-topic NPMI", "Mean ± std over seeds", "Against λ", "Training history", "λ = 1 next to λ = 0",
        "Teacher's word shift", "Downstream: θ → labels"]
st.subheader("Coherence and what the teacher changes")
tabs = st.tabs(TABS, key=keys.CMP_TAB, on_change="rerun")
sig = cc.family_sig(fruns)
if tabs[0].open:
    tabs[0].plotly_chart(cc.fig_topic_npmi(base.key, bat.key, name_b, base, bat), key="cmp_topic_npmi")
if tabs[1].open or tabs[2].open:
    npmi_on = family_npmi_on()
    npmi_note = ("" if npmi_on == "test" else f" NPMI against the {cc.NPMI_ON[npmi_on]}: the test split is too "
                 "sparse to judge the coherence of some of these runs' topics (it saw too few of their top-word "
                 "pairs).")

    def chart_npmi(run: Run) -> float:
        return run_coherence(run)[f"{npmi_on}_npmi"]

if tabs[1].open:
    if npmi_note:
        tabs[1].caption(npmi_note.strip())
    if len(seeds) < 2:
        tabs[1].caption("One seed so far: train more seeds (Train page) for a spread.")
    tabs[1].plotly_chart(cc.fig_seed_summary(sig, lam, npmi_on, ref_id, fruns, chart_npmi), key="cmp_seed_summary")
if tabs[2].open:
    tabs[2].caption(f"The whole curve over the {len({r.lam for r in fruns})} trained λ values (mean ± std over "
                    "seeds, each seed a dot); the dotted line is the slider's λ." + npmi_note)
    tabs[2].plotly_chart(cc.fig_lambda_sweep(sig, lam, npmi_on, ref_id, fruns, chart_npmi), key="cmp_lambda_sweep")
if tabs[3].open:
    tabs[3].plotly_chart(cc.fig_history(base.key, bat.key, name_b, base, bat), key="cmp_history")
    if any("tu" in h for h in bat.history):  # runs trained before TU was logged per epoch have none
        tabs[3].caption("Topic uniqueness of each epoch's topics: distillation can make topics less distinct, and "
                        "the baseline's keep separating late in training (the best epoch is chosen by dev NPMI). "
                        "Runs trained before uniqueness was logged per epoch have no line here.")
        tabs[3].plotly_chart(cc.fig_history(base.key, bat.key, name_b, base, bat, "tu"), key="cmp_history_tu")
if tabs[4].open:
    with tabs[4]:
        compare_views.lambda_one(fruns, base, seed, corpus)
if tabs[5].open:
    with tabs[5]:
        compare_views.word_shift(bat, corpus)
if tabs[6].open:
    with tabs[6]:
        compare_views.downstream(fruns, corpus, lam)

# -------------------------------------------------------------------------------------------- document view
st.subheader("One document")
compare_views.document(corpus, base, bat)

# --------------------------------------------------------------------------------------------------- export
st.subheader("Export")
st.download_button("Aligned topic pairs (CSV)", cc.pairs_csv(base.key, bat.key, base, bat),
                   f"aligned-{corpus.name}-lam{lam:g}-seed{seed}.csv", "text/csv", key="cmp_dl_pairs")
which = st.radio("Run", ["base", "bat"], index=1, horizontal=True, key="cmp_export_which",
                 format_func={"base": "Baseline (λ=0)", "bat": name_b}.get)  # stable values: name_b may change
export_buttons(base if which == "base" else bat, corpus, "cmp")
cc.warm(fruns, seed, lambda x: f"BAT (λ={x:g})")  # the other λ of this seed, in the background
perf.freeze_once()  # the first time through: later reruns' garbage collection skips the imported libraries
