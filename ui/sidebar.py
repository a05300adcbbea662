"""The sidebar every page shows: the current corpus, the device, the running job."""

from __future__ import annotations

import streamlit as st

from ui import runs, state
from ui.jobs import manager
from ui.progress import sidebar_job


@st.cache_resource(show_spinner=False)
def device_name() -> str:
    """The device training will use, e.g. 'cpu' or 'cuda (NVIDIA H100 80GB HBM3)' (imports torch once)."""
    from bat_core.base.device import describe, pick_device

    return describe(pick_device("auto"))


def sidebar() -> None:
    corpus = state.current_corpus()
    with st.sidebar:
        st.markdown("### Current corpus")
        if corpus is None:
            st.caption("No corpus yet: load one on the Corpus page.")
        else:
            src = state.corpus_source()
            st.markdown(f"**{corpus.name}**" + (" (built-in)" if src.get("kind") == "builtin" else ""))
            st.caption(f"{corpus.n_docs:,} documents · {corpus.vocab_size:,} words · "
                       f"{int(corpus.counts.sum()):,} tokens · id {corpus.hash[:8]}")
            st.caption(f"{len(runs.all_runs(corpus))} trained run(s) for this corpus")
            if state.corpus_lost():
                st.caption("The corpus this page's address named is no longer loaded on the server (it restarted, "
                           "or many corpora were loaded since), so this is the demo corpus. Its trained runs are "
                           "kept: load it again on the Corpus page to see them.")
        st.markdown("### Device")
        st.caption(device_name())
        job = manager().active()
        if job is not None:
            sidebar_job(job)
