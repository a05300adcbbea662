"""The names under which the app keeps things in ``st.session_state``, in one place.

Pages and helpers read and write session state only through these names (a widget whose value other code sets or
reads has its key here too), so a key is spelled once and a search for its name finds every use.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------- the corpus (ui.state)
CORPUS = "corpus"  # the current bat_core.data.corpus.Corpus (None when the demo could not load)
CORPUS_DOCS = "corpus_docs"  # its raw documents
CORPUS_SOURCE = "corpus_source"  # {"kind": "builtin"|"upload", "name": …, "id": …, labels of an upload …}
DEMO_ERROR = "demo_error"  # why the demo corpus could not load (gensim missing)
CORPUS_LOST = "corpus_lost"  # the corpus the page's address named was no longer loaded: the session fell back to demo
CORPUS_MSG = "corpus_msg"  # a success line the Corpus page shows once, after the rerun that loaded a corpus
CORPUS_WARN = "corpus_warn"  # a warning the Corpus page shows once (a label column that cannot be classified)
REFERENCE = "reference"  # an outside reference for NPMI (ui.reference.Reference), counted for the current corpus
REFERENCE_CLEARED = "reference_cleared"  # the name of a reference dropped because the corpus changed (said once)

# --------------------------------------------------------------------------------- jobs (ui.training, ui.progress)
JOB_ID = "job_id"  # the last background job this session started (ui.jobs)
JOB_TEACHER_CFG = "job_teacher_cfg"  # the teacher settings of that job, to train more λ alike from Compare


def followed(picker: str) -> str:
    """The key that remembers which step of a running job a family picker last moved to (it moves once a step)."""
    return f"{picker}_followed"


def seen(panel: str) -> str:
    """The key that remembers which finished job a progress panel already reran the page for."""
    return f"{panel}_seen"


# ----------------------------------------------------------------------- what the user picked (ui.picks)
SEL_LAM = "sel_lam"  # the λ and seed last picked on Compare or pyLDAvis: the other page starts from them
SEL_SEED = "sel_seed"
CMP_LAM = "cmp_lam"  # the Compare page's λ slider and seed box (widgets whose value the page sets before drawing)
CMP_SEED = "cmp_seed"
CMP_PENDING_LAM = "cmp_pending_lam"  # a λ being trained from Compare: the slider moves to it once it is ready
CMP_TAB = "cmp_tab"  # the open chart tab on Compare
TRAIN_FAMILY = "train_family_pick"  # the "Settings" family pickers of Train, Compare and pyLDAvis
CMP_FAMILY = "cmp_family"
LDA_FAMILY = "lda_family"
