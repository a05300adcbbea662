"""The app's view helpers (Streamlit), one idea per module; the pages in ``views/`` are thin scripts over them.

State that crosses pages lives in ``st.session_state`` under a few keys:

- ``corpus``: the current :class:`~bat_core.data.corpus.Corpus`
- ``corpus_source``: ``{"kind": "builtin"|"upload", "name": …, "id": …}``; ``corpus_docs``: its raw documents
- ``job_id``: the last background job this session started (:mod:`ui.jobs`)
- ``sel_lam`` / ``sel_seed``: the λ and seed picked on the Compare page (the pyLDAvis page starts from them)

Modules: ``defaults`` (settings from the environment), ``state`` (the current corpus), ``runs`` (cached reads of
runs and teacher logits), ``jobs`` (background threads, no Streamlit), ``training`` (starting a training job),
``progress`` (job panels), ``exports`` (download buttons), ``sidebar``, ``text``.
"""
