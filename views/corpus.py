"""Corpus page: pick the documents (demo or upload), set preprocessing, look at what came out, and optionally add a
reference of longer in-domain texts that Compare scores coherence against (never trained on)."""

import numpy as np
import streamlit as st

from bat_core.base.errors import BatError
from bat_core.config import CorpusConfig
from bat_core.data.readers import parse_bytes, parse_labelled_table, parse_table, tabular_columns
from bat_core.explore import plots
from ui import reference, state
from ui.text import md_escape

AUTO = "(detect automatically)"
NO_LABELS = "(none)"

st.title("Corpus")
st.caption("The documents a topic model is trained on. The demo corpus is ready to use; or upload your own. "
           "Every run and teacher is cached per corpus, so switching back and forth is cheap.")

corpus = state.current_corpus()
cfg = corpus.config if corpus is not None else CorpusConfig()

# ------------------------------------------------------------------------------------------------ source
left, right = st.columns([1, 1.4], gap="large")
with left:
    st.subheader("Built-in corpora")
    src = state.corpus_source()
    names = list(state.BUILTIN)
    current = src.get("name") if src.get("kind") == "builtin" else None
    pick = st.selectbox("Corpus", names, names.index(current) if current in names else 0, key="builtin_name",
                        format_func=lambda n: "demo (Lee news)" if n == "demo" else n)
    st.write(state.BUILTIN[pick] + ".")
    in_use = current == pick
    if in_use:
        st.caption("✓ In use: you can go straight to training.")
    if st.button("Use the demo corpus" if pick == "demo" else f"Use {pick}", key="use_demo",
                 type="secondary" if in_use else "primary"):
        try:
            state.use_builtin(pick, cfg)
            st.toast(f"{pick} loaded")
            st.rerun()
        except BatError as e:
            st.error(str(e))
    if state.demo_error():
        st.warning(state.demo_error())

with right:
    st.subheader("Your documents")
    up = st.file_uploader(
        "Upload a file", type=["txt", "zip", "csv", "tsv", "jsonl", "json"], key="upload",
        help="• .txt: one document per line  • .zip: one document per .txt file  "
             "• .csv / .tsv / .jsonl / .json: one document per row, with a text column")
    text_column = label_column = None
    if up is not None:
        data = up.getvalue()
        cols = tabular_columns(up.name, data)
        if cols:
            choice = st.selectbox("Text column", [AUTO, *cols], key="text_column",
                                  help="Which column holds the document text")
            text_column = None if choice == AUTO else choice
            label_choice = st.selectbox("Label column (optional)", [NO_LABELS, *cols], key="label_column",
                                        help="A category per document (topic, outlet, class…): Compare then shows "
                                             "whether distilled topics make better features for predicting it")
            label_column = None if label_choice == NO_LABELS else label_choice
        if st.button("Use this file", key="load_upload", type="primary"):
            try:
                with st.spinner(f"Reading {up.name}…"):
                    used = None  # the text column read, said below: a column found, not named, may be wrong
                    if label_column is not None:
                        docs, labels, used = parse_labelled_table(up.name, data, text_column, label_column)
                    elif cols:
                        (docs, used), labels = parse_table(up.name, data, text_column), None
                    else:
                        docs, labels = parse_bytes(up.name, data, text_column), None
                    new = state.build(docs, cfg, name=up.name.rsplit(".", 1)[0] or "upload")
            except Exception as e:  # noqa: BLE001 - BatError explains itself; anything else must not crash the page
                why = str(e) if isinstance(e, BatError) else f"unexpected {type(e).__name__}: {e}"
                st.error(f"Could not use {up.name}: {why}")
                if corpus is not None:
                    st.caption(f"Still using the previous corpus, {corpus.name}.")
            else:
                state.set_corpus(new, docs, {"kind": "upload", "name": up.name, "id": state.docs_id(docs),
                                           "text_column": text_column, "label_column": label_column,
                                           "labels": labels})
                labels_found, why = state.corpus_labels(new) if label_column is not None else ([], "")
                # labels that cannot be classified: said now, not on Compare after training
                col = f" (text from the column {used!r})" if used is not None and text_column is None else ""
                state.tell_after_rerun(f"Loaded {up.name}: {new.n_docs:,} documents{col}.",
                                       None if labels_found is not None else
                                       f"The label column gives no downstream check: {why}")
                st.rerun()

msg, warn = state.pop_told()
if msg:
    st.success(msg)
if warn:
    st.warning(warn)

corpus = state.current_corpus()
if corpus is None:
    st.info("Load the demo corpus or upload a file to begin.")
    st.stop()

# ------------------------------------------------------------------------------------------- preprocessing
with st.expander("Preprocessing settings", expanded=False):
    c1, c2, c3 = st.columns(3)
    vocab_size = c1.number_input("Vocabulary size", 10, 100_000, int(cfg.vocab_size), step=500, key="vocab_size",
                                 help="Keep the most frequent words (after stop words)")
    min_df = c2.number_input("Min document frequency", 1, 1000, int(max(1, cfg.min_df if cfg.min_df >= 1 else 1)),
                             key="min_df", help="A word must appear in at least this many documents")
    max_df = c3.slider("Max document frequency", 0.05, 1.0, float(min(1.0, cfg.max_df)), 0.05, key="max_df",
                       help="Drop words found in more than this fraction of documents")
    stop = st.text_input("Extra stop words", ", ".join(cfg.extra_stop_words), key="extra_stop",
                         placeholder="e.g. said, mr, also", help="Comma- or space-separated; English stop words are "
                         "always removed")
    boiler = st.checkbox("Remove boilerplate (lines and 8-word runs repeated across many documents)",
                         value=cfg.remove_boilerplate, key="boilerplate")
    if st.button("Apply settings", key="apply_settings"):
        words = tuple(w for w in stop.replace(",", " ").split() if w)
        try:
            new_cfg = CorpusConfig.from_dict({**cfg.to_dict(), "vocab_size": int(vocab_size), "min_df": int(min_df),
                                              "max_df": float(max_df), "extra_stop_words": words,
                                              "remove_boilerplate": bool(boiler)})
            docs = state.corpus_docs() or state.demo_docs()
            src = state.corpus_source()
            new = state.build(docs, new_cfg, corpus.name, src.get("id"))
        except BatError as e:
            st.error(f"These settings do not work for this corpus: {e}")
        else:
            state.set_corpus(new, docs, src)
            state.tell_after_rerun(f"Rebuilt {new.name} with the new settings.")
            st.rerun()

# ----------------------------------------------------------------------------------------------------- stats
s = corpus.stats
st.subheader(f"{corpus.name}")
m = st.columns(5)
m[0].metric("Documents", f"{corpus.n_docs:,}")
m[1].metric("Vocabulary", f"{corpus.vocab_size:,}")
m[2].metric("Tokens", f"{int(s.get('tokens', corpus.counts.sum())):,}")
m[3].metric("Mean length", f"{s.get('mean_doc_length', 0):.0f}")
m[4].metric("Boilerplate: docs touched", f"{s.get('boilerplate_docs_touched', 0):,}" if corpus.config.remove_boilerplate
            else "off")
n_split = {k: len(v) for k, v in corpus.splits.items()}
st.caption(
    f"Split: {n_split['train']:,} train · {n_split['dev']:,} dev · {n_split['test']:,} test. "
    f"Read {s.get('documents_read', corpus.n_docs):,} documents; dropped {s.get('empty_dropped', 0)} empty, "
    f"{s.get('duplicates_dropped', 0)} duplicates, {s.get('empty_after_vectorising', 0)} with no vocabulary word."
    + (f" Boilerplate removal cut {s.get('boilerplate_words_removed', 0):,} words." if corpus.config.remove_boilerplate
       else ""))

st.page_link("views/train.py", label="Next: train a baseline and a BAT model on this corpus →")

lengths = np.asarray(corpus.counts.sum(axis=1)).ravel()
freq = np.asarray(corpus.counts.sum(axis=0)).ravel()
top = np.argsort(-freq)[:25]
g1, g2 = st.columns(2)
g1.plotly_chart(plots.doc_length_histogram(lengths), key="len_hist")
g2.plotly_chart(plots.top_words_bar([corpus.vocab[i] for i in top], freq[top]), key="top_words")

with st.expander("Sample documents"):
    for i in range(min(5, corpus.n_docs)):
        t = corpus.texts[i]
        st.markdown(f"**{i}.** " + md_escape(t[:400] + "…" if len(t) > 400 else t))

# ------------------------------------------------------------------------------------- reference for coherence
st.subheader("Reference for coherence (optional)")
st.caption("Longer in-domain texts (the full articles or reviews behind short texts, say) that Compare scores topic "
           "coherence (NPMI) against, beside the test split and the whole corpus: on a small test split of short "
           "texts most top-word pairs never occur together and its NPMI is noise. Used for scoring only, never for "
           "training; its words are counted over this corpus's vocabulary, so changing the corpus drops it.")
cleared = reference.pop_cleared()
if cleared:
    st.info(f"The reference {md_escape(cleared)} was dropped because the corpus changed (its words are counted over "
            "the corpus's vocabulary): upload it again below to score against it.")
ref_up = st.file_uploader("Upload a reference", type=["txt", "zip", "csv", "tsv", "jsonl", "json"],
                          key="reference_upload",
                          help="Read like the corpus: • .txt: one document per line  • .zip: one document per .txt "
                               "file  • .csv / .tsv / .jsonl / .json: one document per row, with a text column")
if ref_up is not None:
    ref_data = ref_up.getvalue()
    ref_cols = tabular_columns(ref_up.name, ref_data)
    ref_column = None
    if ref_cols:
        ref_choice = st.selectbox("Reference text column", [AUTO, *ref_cols], key="reference_text_column")
        ref_column = None if ref_choice == AUTO else ref_choice
    if st.button("Use as reference", key="use_reference", type="primary"):
        try:
            with st.spinner(f"Reading {ref_up.name}…"):
                reference.use(reference.read(ref_up.name, ref_data, corpus, ref_column))
        except Exception as e:  # noqa: BLE001 - BatError explains itself; anything else must not crash the page
            why = str(e) if isinstance(e, BatError) else f"unexpected {type(e).__name__}: {e}"
            st.error(f"Could not use {ref_up.name} as a reference: {why}")
ref = reference.current(corpus)
if ref is None:
    st.caption("No reference in use: Compare scores NPMI against the test split and the whole corpus.")
else:
    st.success(f"Reference in use: {ref.line()}. Compare scores NPMI against it beside the test split and the whole "
               "corpus; it is used for scoring only, never for training.")
    if st.button("Stop using the reference", key="reference_clear"):
        reference.clear()
        st.rerun()
