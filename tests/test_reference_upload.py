"""AppTest of the reference for coherence (issue #25): longer in-domain texts uploaded on the Corpus page, scored on
Compare beside the test split and the whole corpus (the same numbers as ``bat fit --reference FILE``), said in words,
dropped when the corpus changes, and bad files explained without a traceback while the corpus upload keeps working.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_app import SPARSE_WORDS, _fast_speeds, new_app, texts, train_and_compare, varied_docs

from bat_core.data.corpus import vectorize
from bat_core.data.readers import read_documents
from bat_core.evaluation.coherence import coherence
from bat_core.evaluation.metrics import top_words


@pytest.fixture()
def fast_app(monkeypatch, tmp_path):
    """The app on a fresh cache, training in seconds with neighbours by shared words (no encoder to load), no
    background teacher, fixed speeds for the estimate."""
    from teacher_fixtures import FAST_ENV

    for k, v in {**FAST_ENV, "BAT_TEACHER_KIND": "lexical", "TRANSFORMERS_OFFLINE": "1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BAT_PREBUILD_TEACHER", "0")
    _fast_speeds(monkeypatch)


def _use_reference(at, name: str, data: bytes) -> None:
    at.switch_page("views/corpus.py").run()
    at.file_uploader(key="reference_upload").set_value((name, data, "application/octet-stream")).run()
    at.button(key="use_reference").click().run()
    assert not at.exception, at.exception


def test_reference_flows_into_compare_and_is_dropped_with_the_corpus(fast_app, tmp_path):
    """Short texts over many words (a sparse test split) and a reference of long texts over the same words: the
    Corpus page says which reference is in use and that it only scores; Compare shows its NPMI for both runs with the
    arrow, the share of pairs it saw, and says to read it; a new corpus drops it, in words."""
    rng = np.random.default_rng(5)
    corpus_data = "\n".join(" ".join(rng.choice(SPARSE_WORDS, 6, replace=False)) for _ in range(160)).encode()
    ref_data = "\n".join(" ".join(rng.choice(SPARSE_WORDS, 40)) for _ in range(80)).encode()
    at = new_app(timeout=120)
    at.file_uploader(key="upload").set_value(("sparse.txt", corpus_data, "text/plain")).run()
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert any("No reference in use" in c for c in texts(at.caption))

    _use_reference(at, "full.txt", ref_data)
    assert not at.error, texts(at.error)
    corpus = at.session_state["corpus"]
    ref = at.session_state["reference"]
    assert (ref.name, ref.n_docs, ref.corpus_hash) == ("full.txt", 80, corpus.hash)
    said = " ".join(texts(at.success))
    assert "Reference in use: **full\\.txt** (80 documents)" in said, said
    assert "used for scoring only, never for training" in said

    metrics = train_and_compare(at)
    assert {"Baseline NPMI (test)", "Baseline NPMI (whole corpus)", "Baseline NPMI (reference)",
            "BAT (λ=0.5) NPMI (reference)"} <= set(metrics), list(metrics)
    assert metrics["BAT (λ=0.5) NPMI (reference)"].proto.delta
    assert " · reference " in metrics["Top-word pairs seen together"].value
    warning = " ".join(texts(at.warning))
    assert "too sparse to judge coherence" in warning and "Read the NPMI against the reference instead" in warning
    assert any("full\\.txt" in c and "used for scoring only, never for training" in c for c in texts(at.caption))

    # the numbers are the CLI's: the same file read from disk by read_documents, counted over the corpus vocabulary
    from ui.runs import cache

    path = tmp_path / "full.txt"
    path.write_bytes(ref_data)
    counts = vectorize(read_documents(path)[1], corpus.config, corpus.vocab)
    runs = {(r.lam, r.seed): r for r in cache().runs.runs(corpus.hash)}
    base = next(r for (lam, _), r in runs.items() if lam == 0)
    want = coherence(top_words(base.beta, 10), corpus.split_counts("test"), corpus.counts, counts)
    assert metrics["Baseline NPMI (reference)"].value == f"{want['reference_npmi']:.3f}"

    # another corpus (new settings: another vocabulary) drops the reference, and the Corpus page says so once
    at.switch_page("views/corpus.py").run()
    at.number_input(key="vocab_size").set_value(150)
    at.button(key="apply_settings").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "reference" not in at.session_state
    assert any("full\\.txt was dropped because the corpus changed" in i for i in texts(at.info)), texts(at.info)
    assert any("No reference in use" in c for c in texts(at.caption))
    at.run()
    assert not any("dropped because the corpus changed" in i for i in texts(at.info))


@pytest.mark.parametrize("name,data,expect", [
    ("empty.txt", b"", "is empty"),
    ("blank.txt", b"\n  \n\t\n", "is empty"),
    ("binary.txt", bytes(range(256)) * 20, "not a text file"),
    ("foreign.txt", "zzxq wwvvk\nqqppj ççkk\n".encode(), "shares no word with the vocabulary of demo"),
    ("nocol.csv", b"a,b\n1,2\n3,4\n", "could not find a text column"),
])
def test_bad_reference_is_explained_and_nothing_changes(fast_app, name, data, expect):
    at = new_app()
    before = at.session_state["corpus"].hash
    _use_reference(at, name, data)
    errors = texts(at.error)
    assert errors and errors[0].startswith(f"Could not use {name} as a reference: ") and expect in errors[0], errors
    assert "reference" not in at.session_state
    assert at.session_state["corpus"].hash == before
    assert any("No reference in use" in c for c in texts(at.caption))


def test_corpus_upload_keeps_working_after_a_bad_reference(fast_app):
    at = new_app()
    _use_reference(at, "empty.txt", b"")
    assert at.error
    at.file_uploader(key="upload").set_value(("docs.txt", "\n".join(varied_docs(24)).encode(), "text/plain")).run()
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state["corpus"].n_docs == 24
    _use_reference(at, "more.txt", "\n".join(varied_docs(30, seed=1)).encode())
    assert not at.error, texts(at.error)
    assert at.session_state["reference"].n_docs == 30
    at.switch_page("views/compare.py").run()  # no runs for this corpus yet: the page still renders
    assert not at.exception, at.exception


def test_reference_table_with_a_text_column_picker(fast_app):
    at = new_app()
    rows = ["id,body"] + [f'{i},"{doc}"' for i, doc in enumerate(varied_docs(15, seed=2))]
    at.file_uploader(key="reference_upload").set_value(("ref.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert at.selectbox(key="reference_text_column").options == ["(detect automatically)", "id", "body"]
    at.selectbox(key="reference_text_column").set_value("id").run()
    at.button(key="use_reference").click().run()  # numbers only: no word of the vocabulary
    assert not at.exception and "shares no word with the vocabulary" in at.error[0].value
    at.selectbox(key="reference_text_column").set_value("body").run()
    at.button(key="use_reference").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state["reference"].n_docs == 15
    assert any("Reference in use: **ref\\.csv** (15 documents" in s for s in texts(at.success))
    at.button(key="reference_clear").click().run()
    assert "reference" not in at.session_state
    assert any("No reference in use" in c for c in texts(at.caption))
