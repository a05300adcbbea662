"""The app's view helpers (Streamlit), one idea per module; the pages in ``views/`` are thin scripts over them.

State that crosses pages lives in ``st.session_state`` under the names of :mod:`ui.keys` (the corpus, the last job,
the λ and seed last picked), read and written through the helpers below.

Modules: ``keys`` (the session-state names), ``defaults`` (settings from the environment), ``state`` (the current
corpus), ``reference`` (an uploaded reference for coherence, scoring only), ``picks`` (the settings-family picker,
the λ and seed the pages share), ``runs`` (cached reads of runs and teachers), ``jobs`` (background threads, no
Streamlit), ``training`` (the λ grid, the teacher in words, starting a training job), ``live`` (a running job's
plan: what trains now, what the pages can show already; no Streamlit), ``prebuild`` (the default teacher and its first
look, prepared in the background when a corpus loads; no Streamlit), ``progress`` (job panels, the live line, the
background build's line), ``exports`` (download buttons), ``tables`` (the Compare page's HTML), ``compare_cache``
/ ``compare_views`` / ``ldavis_cache`` (what Compare and pyLDAvis compute and show), ``perf``, ``sidebar``, ``text``.
"""
