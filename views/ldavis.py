"""pyLDAvis page: the intertopic maps and term bars of the λ = 0 baseline and a BAT model side by side, offline."""

import numpy as np
import streamlit as st

from bat_core.explore.families import families, pick
from ui import compare_cache as cc
from ui import keys, ldavis_cache, perf, picks, runs, state
from ui.exports import export_buttons

st.title("pyLDAvis")
corpus = state.require_corpus()

saved = runs.all_runs(corpus)
if not saved:
    st.info("No trained runs for this corpus yet.")
    st.page_link("views/train.py", label="Go to Train →")
    st.stop()

sel_lam, sel_seed = picks.picked()
fruns = picks.family_picker(families(saved), saved, keys.LDA_FAMILY,
                            prefer=lambda fam: picks.shows(fam, sel_lam, sel_seed))
bat_lams = sorted({r.lam for r in fruns if r.lam > 0})

c1, c2, c3 = st.columns([2, 1, 1])
if bat_lams:
    lam = c1.select_slider("BAT λ (teacher weight)", bat_lams, sel_lam if sel_lam in bat_lams else bat_lams[-1],
                           key="lda_lam", format_func=lambda x: f"{x:g}")
else:
    lam = None
    c1.caption("Only the λ = 0 baseline is trained: train a λ > 0 to see BAT next to it.")
seeds = sorted({r.seed for r in fruns if lam is None or np.isclose(r.lam, lam)})
seed = c2.selectbox("Seed", seeds, seeds.index(sel_seed) if sel_seed in seeds else 0, key="lda_seed")
layout = c3.radio("Layout", ["Side by side", "One above the other"], key="lda_layout")
base = pick(fruns, 0.0, seed)
bat = pick(fruns, lam, seed) if lam is not None else None
picks.remember(bat.lam if bat is not None else None, seed)
shown = [r for r in (base, bat) if r is not None]
if base is None:
    st.caption(f"The λ = 0 baseline has no run for seed {seed}; only BAT is shown.")

st.caption("Topic numbers match the Compare page (topic i of each model is circle i here). Rendered offline (d3 and "
           "LDAvis are embedded), so it works without a network.")
side = layout == "Side by side" and len(shown) == 2
cols = st.columns(len(shown)) if side else [st.container() for _ in shown]
for col, run in zip(cols, shown, strict=True):
    col.markdown(f"**{ldavis_cache.title(run)}**: test NPMI {run.metrics.get('test_npmi', float('nan')):.3f}, "
                 f"uniqueness {run.metrics.get('tu', float('nan')):.3f}")
    col.iframe(ldavis_cache.run_page(run, corpus, zoom=0.55 if side else 1.0), height=520 if side else 880)

if base is not None and bat is not None:
    with st.expander("Which BAT topic is which baseline topic (aligned as on the Compare page)"):
        rows = cc.pair_table(base.key, bat.key, base, bat)
        st.markdown(" · ".join(f"{r['a']} ↔ {r['b']}" + ("" if r["close"] else " (no close counterpart)")
                               for r in rows))

st.subheader("Export")
which = st.radio("Run", [ldavis_cache.title(r) for r in shown], index=len(shown) - 1, horizontal=True,
                 key="lda_export_which")
export_buttons(next(r for r in shown if ldavis_cache.title(r) == which), corpus, "lda")
perf.freeze_once()
