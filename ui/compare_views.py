"""Views of the Compare page: the λ = 1 topics next to the λ = 0 baseline, the words whose share the teacher's
targets raise or lower most, θ as features for a classifier against λ (issue #11; looked up through
:mod:`ui.compare_cache`), and one document as the teacher and both students see it."""

from __future__ import annotations

import numpy as np
import streamlit as st

from bat_core.data.corpus import Corpus
from bat_core.data.datasets import LABELLED
from bat_core.evaluation.align import softmax_rows
from bat_core.evaluation.coherence import MIN_PAIRS_SEEN, which_to_read
from bat_core.explore.families import pick, run_label
from bat_core.explore.wording import coherence_reading
from bat_core.runs.store import Run
from ui import compare_cache as cc
from ui import reference, runs, state, tables
from ui.reference import Reference
from ui.text import md_escape

SHIFT_WORDS = 15


def coherence_pair(base: Run, other: Run, corpus: Corpus) -> tuple[dict, dict, bool]:
    """Both runs' coherence (``compare_cache.coherence``, against the session's reference too when there is one) and
    whether the test split is too sparse to read for them (either run's top-word pairs seen together there below
    ``MIN_PAIRS_SEEN``)."""
    ref = reference.current(corpus)
    rid, counts = (ref.id, ref.counts) if ref is not None else ("", None)
    cb = cc.coherence(base.key, corpus.hash, rid, base, corpus, counts)
    co = cc.coherence(other.key, corpus.hash, rid, other, corpus, counts)
    return cb, co, bool(cb["test_sparse"] or co["test_sparse"])


def test_npmi_delta(base: Run, other: Run, sparse: bool) -> str | None:
    """The arrow under the test NPMI: none when the test split is too sparse to judge coherence on."""
    return None if sparse else f"{other.metrics['test_npmi'] - base.metrics['test_npmi']:+.3f}"


def seen(cb: dict, co: dict, where: str) -> float:
    """The lower of the two runs' shares of top-word pairs seen together in ``where`` (test, corpus, reference)."""
    return min(cb.get(f"{where}_pairs_seen") or 0.0, co.get(f"{where}_pairs_seen") or 0.0)


def has_reference(cb: dict, co: dict, ref: Reference | None) -> bool:
    """Whether both runs were scored against an uploaded reference (their ``compare_cache.coherence``)."""
    return ref is not None and cb.get("reference_npmi") is not None and co.get("reference_npmi") is not None


def coherence_row(cb: dict, co: dict, sparse: bool, name: str, ref: Reference | None = None) -> None:
    """NPMI against the whole corpus (and the reference, when there is one) for both runs (with the arrow), the share
    of top-word pairs each saw together, the top words' mean document frequency, and which NPMI to read."""
    c = st.columns(4)
    c[0].metric("Baseline NPMI (whole corpus)", f"{cb['corpus_npmi']:.3f}",
                help="NPMI of the top 10 words against every document of the corpus (training split included): "
                     "many more documents than the test split, so far fewer pairs of top words go unseen")
    c[1].metric(f"{name} NPMI (whole corpus)", f"{co['corpus_npmi']:.3f}",
                f"{co['corpus_npmi'] - cb['corpus_npmi']:+.3f}")
    seen_test, seen_corpus = seen(cb, co, "test"), seen(cb, co, "corpus")
    has_ref = has_reference(cb, co, ref)
    seen_ref = seen(cb, co, "reference") if has_ref else None
    c[2].metric("Top-word pairs seen together", f"test {seen_test:.0%} · corpus {seen_corpus:.0%}"
                + (f" · reference {seen_ref:.0%}" if has_ref else ""),
                help="The share of each topic's top-word pairs that occur together in at least one document (the "
                     f"lower of the two runs); below {MIN_PAIRS_SEEN:.0%} NPMI is mostly zeros")
    c[3].metric("Top words' mean document frequency", f"{cb['top_word_df']:.0f} · {co['top_word_df']:.0f}",
                help="In how many documents of the corpus the top words occur on average: baseline · " + name)
    if has_ref:
        r = st.columns([1, 1, 2])
        r[0].metric("Baseline NPMI (reference)", f"{cb['reference_npmi']:.3f}",
                    help="NPMI of the top 10 words against the reference uploaded on the Corpus page, counted over "
                         "the corpus's vocabulary")
        r[1].metric(f"{name} NPMI (reference)", f"{co['reference_npmi']:.3f}",
                    f"{co['reference_npmi'] - cb['reference_npmi']:+.3f}")
        r[2].caption(f"Reference: {ref.line()}, uploaded on the Corpus page. It is used for scoring only, never for "
                     "training.")
    text = coherence_reading(which_to_read(sparse, seen_ref, seen_corpus), seen_test, seen_ref, MIN_PAIRS_SEEN)
    if sparse:
        st.warning(text, icon="⚠️")
    else:
        st.caption(text)


def lambda_one(fruns: list[Run], base: Run, seed: int, corpus: Corpus) -> None:
    """λ = 1 (the student learns from the teacher's targets only) aligned with the baseline, same seed if trained."""
    ones = [r for r in fruns if np.isclose(r.lam, 1.0)]
    if not ones:
        st.info("λ = 1 is not trained for these settings: train it (Train page, or “Train another λ” above) to see "
                "the topics a student learns from the teacher's targets alone next to the baseline's.")
        return
    one = pick(fruns, 1.0, seed)
    if one is None:
        one = ones[0]
        other = pick(fruns, 0.0, one.seed)
        if other is None:
            st.info(f"λ = 1 is trained for seed(s) {sorted({r.seed for r in ones})} only, and the baseline is not.")
            return
        st.caption(f"λ = 1 has no run for seed {seed}; showing seed {one.seed}.")
        base = other
    rows = cc.pair_table(base.key, one.key, base, one)
    won, n_close = tables.wins(rows)
    cb, co, sparse = coherence_pair(base, one, corpus)
    c = st.columns(4)
    c[0].metric("Baseline NPMI (test)", f"{base.metrics['test_npmi']:.3f}")
    c[1].metric("λ = 1 NPMI (test)", f"{one.metrics['test_npmi']:.3f}", test_npmi_delta(base, one, sparse))
    c[2].metric("λ = 1 uniqueness", f"{one.metrics['tu']:.3f}", f"{one.metrics['tu'] - base.metrics['tu']:+.3f}")
    c[3].metric("Close counterparts", f"{n_close} of {len(rows)}",
                help="Aligned pairs sharing at least 2 of their top 10 words; λ = 1 wins "
                     f"{won} of them on per-topic NPMI")
    st.caption(f"Seed {one.seed}. At λ = 1 the student reconstructs only the teacher's predicted bag of words, "
               "never the document's own counts: the topics the teacher alone would give, aligned with the baseline "
               "by JSD as above.")
    coherence_row(cb, co, sparse, "λ = 1", reference.current(corpus))
    st.markdown(tables.aligned_table(rows, "Baseline (λ=0)", "λ = 1 (teacher only)"), unsafe_allow_html=True)


def _word_list(items) -> str:
    return ", ".join(f"**{md_escape(w.word)}** ({100 * w.observed:.2f}% → {100 * w.teacher:.2f}%)" for w in items)


def word_shift(bat: Run, corpus: Corpus) -> None:
    """Σ_d N_d·softmax(z_d/T) against Σ_d x_d over the training split, as shares: the most raised / lowered words."""
    tkey = bat.config.get("teacher_key")
    temperature = float(bat.config["distill"].get("temperature", 1.0))
    clip = bat.config["distill"].get("clip")
    eff = cc.word_shift(tkey, corpus.hash, temperature, SHIFT_WORDS, corpus) if tkey else None
    if eff is None:
        st.info("The teacher logits of these runs are not in the cache, so their targets cannot be summed.")
        return
    st.caption(f"Over the {eff.n_docs:,} training documents ({eff.tokens:,.0f} tokens): each word's share of the "
               f"teacher's targets N_d·softmax(z_d / T), T = {temperature:g}, against its share of the observed "
               "counts. "
               f"The targets move {100 * eff.total_variation:.1f}% of the word mix (total variation distance); what "
               "they raise is what distillation pulls the topics towards."
               + (f" (The runs clip the logits at c = {clip:g}; this sum does not.)" if clip else ""))
    st.plotly_chart(cc.fig_word_shift(tkey, corpus.hash, temperature, SHIFT_WORDS, corpus), key="cmp_word_shift")
    st.markdown("Raised most: " + (_word_list(eff.raised) or "none"))
    st.markdown("Lowered most: " + (_word_list(eff.lowered) or "none"))


def downstream(fruns: list[Run], corpus: Corpus, lam: float) -> None:
    """Accuracy and macro-F1 of a logistic regression on θ against λ, or a plain line saying why there are none."""
    labels, source = state.corpus_labels(corpus)
    scores, why = cc.downstream(cc.family_sig(fruns), corpus.hash, source, corpus, fruns, labels) if labels else \
        ([], source)
    if not scores:
        offered = ", ".join(n for n in LABELLED if n in state.BUILTIN)  # those the Corpus page lists
        st.info(f"No downstream check for this corpus: {why}. It needs a category per document: pick a labelled "
                f"built-in corpus ({offered}) on the Corpus page, or upload a table and choose its label column.")
        return
    rows = tuple((s["lam"], s["seed"], s["accuracy"], s["macro_f1"]) for s in scores)
    st.caption(f"Are distilled topics more useful as document features? Labels: {source}. θ of each run's "
               f"{scores[0]['n_train']} "
               f"labelled training documents trains a logistic regression (standardised θ), scored on the "
               f"{scores[0]['n_test']} test documents. Higher is better; each seed is a dot.")
    st.plotly_chart(cc.fig_downstream(cc.family_sig(fruns), lam, rows), key="cmp_downstream")
    base = [s for s in scores if s["lam"] == 0]
    here = [s for s in scores if np.isclose(s["lam"], lam)]
    if base and here:
        b, h = (float(np.mean([s["accuracy"] for s in x])) for x in (base, here))
        seeds = (f"{len(here)} seed{'s' if len(here) > 1 else ''}" if len(here) == len(base) else
                 f"{len(here)} and {len(base)} seeds")
        st.markdown(f"At λ = {lam:g}: accuracy {h:.3f} against {b:.3f} for the baseline "
                    f"({'higher' if h > b else 'lower' if h < b else 'the same'}; "
                    f"{'mean over ' if len(here) > 1 or len(base) > 1 else ''}{seeds}).")


def document(corpus: Corpus, base: Run, bat: Run) -> None:
    """One document picked by number: its text, its words, what the teacher predicts for it, and both students'
    reconstructions (top words with probabilities; words not in the document in blue)."""
    test_rows = corpus.splits["test"]
    doc = int(st.number_input(f"Document (0 – {corpus.n_docs - 1})", 0, corpus.n_docs - 1,
                              int(test_rows[0]) if len(test_rows) else 0, key="cmp_doc"))
    split = next((s for s, idx in corpus.splits.items() if doc in set(idx.tolist())), "?")
    text = corpus.texts[doc]
    st.caption(f"{split} split · {int(corpus.counts[doc].sum())} vocabulary tokens")
    st.markdown("> " + md_escape(text[:1200] + ("…" if len(text) > 1200 else "")))

    row = corpus.counts[doc].toarray().ravel()
    in_doc = row > 0
    rows = np.array([doc])
    tkey = bat.config.get("teacher_key")
    teacher = runs.teacher_logits(tkey) if tkey else None
    predicted = softmax_rows(teacher.dense(rows))[0] if teacher is not None and doc < teacher.n_docs else None
    columns = [tables.word_column("Words in the document", row, corpus.vocab, in_doc, counts=True),
               tables.word_column("Teacher predicts", predicted, corpus.vocab, in_doc,
                                  missing="teacher logits not in the cache"),
               tables.word_column("Baseline reconstruction", base.reconstruction(rows)[0], corpus.vocab, in_doc),
               tables.word_column(f"{run_label(bat)} reconstruction", bat.reconstruction(rows)[0], corpus.vocab,
                                  in_doc)]
    for col, body in zip(st.columns(4), columns, strict=True):
        col.markdown(body, unsafe_allow_html=True)
    st.caption("Probabilities over the vocabulary; blue words do not occur in the document.")
