"""pyLDAvis page: the intertopic map and term bars of the baseline or the BAT model, fully offline."""

import numpy as np
import streamlit as st

from bat_core import ldavis
from bat_core.families import families, family_label, pick, run_label
from ui import runs, state
from ui.exports import export_buttons

st.title("pyLDAvis")
corpus = state.require_corpus()

saved = runs.all_runs(corpus)
if not saved:
    st.info("No trained runs for this corpus yet.")
    st.page_link("views/train.py", label="Go to Train →")
    st.stop()


@st.cache_data(max_entries=16, show_spinner="Preparing pyLDAvis…")
def ldavis_html(run_key: str, corpus_hash: str, title: str, _run, _corpus) -> str:
    """Offline LDAvis HTML for one run, cached per (run, corpus, title)."""
    return ldavis.run_html(_run, _corpus.counts, _corpus.vocab, title=title)


fams = families(saved)
fam_keys = list(fams)
sel_lam, sel_seed = st.session_state.get("sel_lam"), st.session_state.get("sel_seed")
default = 0
for i, fk in enumerate(fam_keys):
    if any(np.isclose(r.lam, sel_lam or -1) and r.seed == sel_seed for r in fams[fk]):
        default = i
        break
fk = fam_keys[0] if len(fam_keys) == 1 else st.selectbox(
    "Settings", fam_keys, default, format_func=lambda f: family_label(fams[f]), key="lda_family")
fruns = fams[fk]
lams = sorted({r.lam for r in fruns})
bat_lams = [x for x in lams if x > 0]

c1, c2, c3 = st.columns([2, 2, 1])
choices = ["Baseline (λ=0)"] * (0.0 in lams) + ["BAT"] * bool(bat_lams)
which = c1.radio("Model", choices, index=len(choices) - 1, horizontal=True, key="lda_which")
if which == "BAT":
    lam = c2.select_slider("BAT λ (teacher weight)", bat_lams, sel_lam if sel_lam in bat_lams else bat_lams[-1],
                           key="lda_lam", format_func=lambda x: f"{x:g}")
else:
    lam = 0.0
    c2.caption("λ = 0: plain Scholar, no teacher.")
seeds = sorted({r.seed for r in fruns if np.isclose(r.lam, lam)})
seed = c3.selectbox("Seed", seeds, seeds.index(sel_seed) if sel_seed in seeds else 0, key="lda_seed")
run = pick(fruns, lam, seed)
if run.lam > 0:
    st.session_state["sel_lam"] = run.lam
st.session_state["sel_seed"] = run.seed

label = run_label(run)
st.caption(f"{label}, seed {run.seed}: test NPMI {run.metrics.get('test_npmi', float('nan')):.3f}, "
           f"uniqueness {run.metrics.get('tu', float('nan')):.3f}. Topic numbers match the Compare page. "
           "Rendered offline (d3 and LDAvis are embedded), so it works without a network.")
html = ldavis_html(run.key, corpus.hash, f"{label}, seed {run.seed}", run, corpus)
st.iframe(html, height=880)

st.subheader("Export")
export_buttons(run, corpus, "lda")
