"""AppTest drives every page: corpus (demo, uploads good and bad, settings), train (tiny random BERT, few epochs),
compare (λ slider, training another λ from there, charts, document view), pyLDAvis and the exports.

The app reads its training defaults from environment variables, so the tests train in seconds.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as _app_test

from bat_core.evaluation.align import align_topics
from bat_core.explore.families import close_counterpart
from bat_core.grid import seed_list

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SEED = seed_list(1)[0]  # the app and the CLI train the same seeds


@pytest.fixture()
def downloads(monkeypatch):
    """Capture what st.download_button serves: url → (bytes, file name)."""
    store: dict[str, tuple[bytes, str | None]] = {}
    base = _app_test.MemoryMediaFileStorage

    class Recording(base):  # type: ignore[misc, valid-type]
        def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
            fid = super().load_and_get_id(path_or_data, mimetype, kind, filename)
            store[self.get_url(fid)] = (self.get_file(fid).content, filename)
            return fid

    monkeypatch.setattr(_app_test, "MemoryMediaFileStorage", Recording)
    return store


def fetch(at: AppTest, store: dict, key: str) -> tuple[bytes, str | None]:
    btn = next(b for b in at.get("download_button") if b.key == key)
    return store[btn.proto.url]


def new_app(timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def _pair(at: AppTest, lam: float):
    """The baseline and the BAT run at ``lam`` (first shared seed) that the Compare page shows first: its first
    family (the γ candidates the dev rule did not choose are listed last), from the run cache."""
    from bat_core.explore.families import comparable, families, ordered, pick
    from ui.runs import cache

    saved = cache().runs.runs(at.session_state["corpus"].hash)
    fams = comparable(families(saved))
    fruns = fams[ordered(fams, saved)[0][0]]
    return pick(fruns, 0.0, SEED), pick(fruns, lam, SEED)


def wait_for_job(at: AppTest, timeout: float = 240) -> None:
    from ui.jobs import manager

    job = manager().get(at.session_state["job_id"])
    assert job is not None
    manager().wait(job, timeout)
    assert not job.running, "training did not finish in time"
    assert job.state == "done", (job.state, job.error, job.detail)
    at.run()
    assert not at.exception, at.exception


def train_and_compare(at: AppTest) -> dict:
    """Train the page's grid with γ = 0 (no γ step: quick), open Compare and return its metrics by label."""
    at.switch_page("views/train.py").run()
    at.selectbox(key="s_gamma").set_value(0.0).run()
    at.button(key="train").click().run()
    wait_for_job(at)
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    return {m.label: m for m in at.metric}


WORDS = ("river mountain weather valley forest election minister budget parliament market shares investor "
         "football match goal season player court judge trial police rain storm flood harvest farmer").split()


def varied_docs(n: int, seed: int = 0) -> list[str]:
    """Short documents that each draw 12 words from a small vocabulary (so no word is in every document)."""
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(n)]


def texts(elements) -> list[str]:
    return [e.value for e in elements]


# ----------------------------------------------------------------------------------------------------- corpus
def test_demo_corpus_is_ready_on_first_start(app_env):
    at = new_app()
    corpus = at.session_state["corpus"]
    assert corpus.name == "demo" and corpus.n_docs > 250
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == f"{corpus.n_docs:,}"
    assert metrics["Vocabulary"] == f"{corpus.vocab_size:,}"
    assert "Boilerplate: docs touched" in metrics
    # the histogram and the top-words chart are there
    assert len(at.get("plotly_chart")) == 2
    side = " ".join(texts(at.sidebar.caption))
    assert f"{corpus.n_docs:,} documents" in side and "cpu" in side


def test_upload_csv_with_text_column_picker(app_env):
    at = new_app()
    rows = ["id,title,body"] + [f'{i},t{i},"{doc}"' for i, doc in enumerate(varied_docs(24))]
    at.file_uploader(key="upload").set_value(("docs.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert not at.exception
    assert at.selectbox(key="text_column").options == ["(detect automatically)", "id", "title", "body"]
    at.selectbox(key="text_column").set_value("body").run()
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, texts(at.error)
    corpus = at.session_state["corpus"]
    assert corpus.name == "docs" and corpus.n_docs == 24
    assert "river" in corpus.vocab or "flows" in corpus.vocab
    assert any("Loaded docs.csv: 24 documents" in s for s in texts(at.success))
    assert at.session_state["corpus_source"]["text_column"] == "body"


def _upload_zip(at: AppTest, name: str, n: int = 12) -> None:
    """Choose a zip of ``n`` .txt documents in the Corpus page's uploader (not yet used)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, doc in enumerate(varied_docs(n)):
            zf.writestr(f"d{i}.txt", doc)
    at.file_uploader(key="upload").set_value((name, buf.getvalue(), "application/zip")).run()


def test_upload_zip_of_txt(app_env):
    at = new_app()
    _upload_zip(at, "many.zip")
    assert not at.get("selectbox") or all(s.key != "text_column" for s in at.get("selectbox"))
    at.button(key="load_upload").click().run()
    assert not at.error, texts(at.error)
    assert at.session_state["corpus"].n_docs == 12


def test_a_reloaded_page_finds_its_corpus_again(app_env, monkeypatch):
    """A reload (a new session) started on the demo corpus and lost an upload: the page's address now names the
    corpus, and a new session with that address gets it back while the server has it."""
    from ui import prebuild, state

    at = new_app()
    _upload_zip(at, "reload.zip")
    at.button(key="load_upload").click().run()
    corpus = at.session_state["corpus"]
    token = state.url_token(corpus, at.session_state["corpus_source"])
    assert corpus.name == "reload"

    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["corpus"] = token
    again.switch_page("views/train.py").run()
    assert not again.exception and again.session_state["corpus"].hash == corpus.hash
    assert not any("no longer loaded" in c for c in texts(again.sidebar.caption))

    gone = AppTest.from_file(APP, default_timeout=60)
    gone.query_params["corpus"] = "0123456789abcdef"  # a server that no longer has it: the demo, said in the sidebar
    gone.run()
    assert gone.session_state["corpus"].name == "demo"
    assert any("no longer loaded" in c for c in texts(gone.sidebar.caption))

    # the demo's own address after a restart: nothing was lost
    demo_token = state.url_token(gone.session_state["corpus"], gone.session_state["corpus_source"])
    monkeypatch.setattr(state, "_LOADED", type(state._LOADED)())
    restarted = AppTest.from_file(APP, default_timeout=60)
    restarted.query_params["corpus"] = demo_token
    restarted.run()
    assert restarted.session_state["corpus"].name == "demo"
    assert not any("no longer loaded" in c for c in texts(restarted.sidebar.caption))
    for build in list(prebuild._builds.values()):  # the background builds these sessions started: done before the
        build.wait()  # interpreter exits (a thread still inside torch then aborts the process)


@pytest.mark.parametrize("name,data,expect", [
    ("few.txt", b"one document\nanother document\n", "at least 10"),
    ("broken.zip", b"this is not a zip archive", "not a valid zip archive"),
    ("bad.jsonl", b'{"text": "fine"}\n{not json}\n', "not valid JSON"),
    ("nocol.csv", b"a,b\n1,2\n3,4\n", "could not find a text column"),
    ("binary.txt", bytes(range(256)) * 20, "not a text file"),
])
def test_bad_upload_shows_error_and_keeps_corpus(app_env, name, data, expect):
    at = new_app()
    before = at.session_state["corpus"].hash
    at.file_uploader(key="upload").set_value((name, data, "application/octet-stream")).run()
    at.button(key="load_upload").click().run()
    assert not at.exception, at.exception
    errors = texts(at.error)
    assert errors and expect in errors[0], errors
    assert errors[0].startswith(f"Could not use {name}")
    assert at.session_state["corpus"].hash == before
    assert any("Still using the previous corpus, demo" in c for c in texts(at.caption))
    # the app keeps working: another page renders
    at.switch_page("views/train.py").run()
    assert not at.exception


def test_train_page_hints_at_the_transformer_for_short_documents(app_env):
    """Perplexity favours shared words on short texts by construction: before training, the Train page says so."""
    at = new_app()
    at.switch_page("views/train.py").run()
    assert not any("documents are short" in c for c in texts(at.caption))  # the demo's articles are long
    rng = np.random.default_rng(3)
    words = [f"{a}{b}" for a in ("market", "league", "storm", "vote", "film") for b in ("s", "ed", "er", "ing", "ly")]
    data = "\n".join(" ".join(rng.choice(words, 8)) for _ in range(120)).encode()
    at.switch_page("views/corpus.py").run()
    at.file_uploader(key="upload").set_value(("snippets.txt", data, "text/plain")).run()
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, texts(at.error)
    at.switch_page("views/train.py").run()
    assert any("documents are short (median 8 words" in c for c in texts(at.caption)), texts(at.caption)


def test_preprocessing_settings(app_env):
    at = new_app()
    at.number_input(key="vocab_size").set_value(500)
    at.text_input(key="extra_stop").set_value("said, people")
    at.checkbox(key="boilerplate").uncheck()
    at.button(key="apply_settings").click().run()
    assert not at.exception and not at.error, texts(at.error)
    corpus = at.session_state["corpus"]
    assert corpus.vocab_size == 500
    assert "said" not in corpus.vocab and "people" not in corpus.vocab
    assert corpus.config.remove_boilerplate is False
    assert {m.label: m.value for m in at.metric}["Boilerplate: docs touched"] == "off"
    # impossible settings: an error, and the corpus stays
    at.number_input(key="min_df").set_value(1000)
    at.button(key="apply_settings").click().run()
    assert at.error and "do not work for this corpus" in at.error[0].value
    assert at.session_state["corpus"].hash == corpus.hash


# ----------------------------------------------------------------------------------- train, compare, ldavis
@pytest.mark.slow
def test_train_compare_ldavis_export(app_env, downloads):
    at = new_app(timeout=120)
    at.switch_page("views/train.py").run()
    assert not at.exception
    assert at.text_input(key="t_model").value == app_env["BAT_TEACHER_MODEL"]
    assert at.number_input(key="s_epochs").value == 4
    assert any("device **cpu**" in m.value for m in [*at.markdown, *at.caption])
    at.number_input(key="s_k").set_value(5).run()
    at.button(key="train").click().run()
    assert not at.exception and not at.error, texts(at.error)
    t0 = time.time()
    wait_for_job(at)
    print(f"train (tiny teacher, 2 runs): {time.time() - t0:.1f} s")

    ok = " ".join(texts(at.success))
    # the default teacher: trained by the job, or built in the background since the demo loaded (ready, or not yet)
    assert "finished" in ok and re.search(r"teacher (trained|read from cache|built in the background)", ok), ok
    assert any("the teacher for these settings is in the cache" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert sorted(table["λ"].tolist()) == [0.0, 0.5]
    assert len(at.get("plotly_chart")) == 1  # training history
    at.radio(key="train_history_metric").set_value("tu").run()  # the same runs' topic uniqueness per epoch
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["yaxis"]["title"]["text"] == "topic uniqueness"
    assert all(0 < y <= 1 for d in spec["data"] for y in d["y"])

    # export from the Train page
    at.selectbox(key="train_export_run").select_index(0).run()
    data, fname = fetch(at, downloads, "train_dl_topics")
    assert fname.startswith("topics-demo-lam") and data.decode().startswith("topic,test_npmi,top_words")
    assert len(data.decode().strip().splitlines()) == 1 + 5

    # ---- Compare
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    assert at.select_slider(key="cmp_lam").options == ["0.5"]
    metrics = {m.label: m.value for m in at.metric}
    assert "Baseline NPMI (test)" in metrics and "BAT (λ=0.5) NPMI (test)" in metrics
    table = next(m.value for m in at.markdown if "bat-align" in m.value)
    assert table.count("<tr>") + table.count("<tr class='far'>") == 1 + 5  # header + 5 aligned pairs
    base_run, bat_run = _pair(at, 0.5)
    pairs = align_topics(base_run.beta, bat_run.beta)
    close = [close_counterpart(base_run.topics[i], bat_run.topics[j]) for i, j, _ in pairs]
    assert metrics["Aligned pairs won by BAT"].endswith(f"of {sum(close)}")
    assert table.count("<tr class='far'>") == table.count("no close counterpart") == close.count(False)
    only_base = sum(len(set(base_run.topics[i]) - set(bat_run.topics[j])) for (i, j, _), c in zip(pairs, close) if c)
    only_bat = sum(len(set(bat_run.topics[j]) - set(base_run.topics[i])) for (i, j, _), c in zip(pairs, close) if c)
    assert table.count(" only-base'") == only_base and table.count(" only-bat'") == only_bat
    assert table.count("class='w") == 2 * 5 * 10  # 10 words a side, 5 pairs
    assert [c.key for c in at.get("plotly_chart")] == ["cmp_topic_npmi"]  # lazy tabs: only the open one is built
    for tab, keys in (("Mean ± std over seeds", ["cmp_seed_summary"]), ("Against λ", ["cmp_lambda_sweep"]),
                      ("Training history", ["cmp_history", "cmp_history_tu"])):  # dev NPMI, then TU per epoch
        at.session_state["cmp_tab"] = tab
        at.run()
        assert not at.exception, at.exception
        assert [c.key for c in at.get("plotly_chart")] == keys
    at.session_state["cmp_tab"] = "Per-topic NPMI"
    at.run()
    doc_view = " ".join(m.value for m in at.markdown)
    assert "Teacher predicts" in doc_view and "teacher logits not in the cache" not in doc_view
    assert "Baseline reconstruction" in doc_view and "BAT (λ=0.5) reconstruction" in doc_view
    data, fname = fetch(at, downloads, "cmp_dl_pairs")
    assert fname == f"aligned-demo-lam0.5-seed{SEED}.csv" and len(data.decode().strip().splitlines()) == 6
    data, _ = fetch(at, downloads, "cmp_dl_json")
    exported = json.loads(data)
    assert exported["lam"] == 0.5 and "test_npmi" in exported["metrics"] and exported["history"]
    data, _ = fetch(at, downloads, "cmp_dl_theta")
    lines = data.decode().strip().splitlines()
    assert lines[0].startswith("doc,split,topic_1") and len(lines) == 1 + at.session_state["corpus"].n_docs

    # ---- train a new λ from the Compare page, in the background; the teacher comes from the cache
    at.number_input(key="cmp_new_lam").set_value(0.25).run()
    at.button(key="cmp_train").click().run()
    assert not at.exception and not at.error, texts(at.error)
    wait_for_job(at)
    from ui.jobs import manager

    job = manager().get(at.session_state["job_id"])
    assert job.result["teacher_from_cache"] is True
    assert any("(cached)" in n for n in job.notes)  # the baseline was not retrained
    slider = at.select_slider(key="cmp_lam")
    assert slider.options == ["0.25", "0.5"]
    assert slider.value == 0.25  # the view moved to the new λ
    assert "BAT (λ=0.25) NPMI (test)" in {m.label for m in at.metric}

    # ---- the slider moves back to an already trained λ: read from the run cache, nothing trains
    import bat_core.grid

    def no_training(*a, **k):
        raise AssertionError("moving the slider must not train")

    n_runs = len(list(Path(app_env["BAT_CACHE_DIR"], "runs").iterdir()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bat_core.grid, "_train_missing", no_training)
        at.select_slider(key="cmp_lam").set_value(0.5).run()
    assert not at.exception, at.exception
    assert "BAT (λ=0.5) NPMI (test)" in {m.label for m in at.metric}
    assert manager().active() is None and len(list(Path(app_env["BAT_CACHE_DIR"], "runs").iterdir())) == n_runs

    # ---- pyLDAvis, starting from the λ chosen on the Compare page
    at.switch_page("views/ldavis.py").run()
    assert not at.exception, at.exception
    assert at.select_slider(key="lda_lam").value == 0.5
    left, right = (f.proto.srcdoc for f in at.get("iframe"))
    assert "new LDAvis" in right and 'src="http' not in right and f"BAT (λ=0.5), seed {SEED}" in right
    assert f"Baseline (λ=0), seed {SEED}" in left
    at.radio(key="lda_export_which").set_value(f"Baseline (λ=0), seed {SEED}").run()
    assert not at.exception
    data, fname = fetch(at, downloads, "lda_dl_topics")
    assert f"lam0-seed{SEED}-" in fname


def page_text(at: AppTest) -> str:
    """Everything the page renders as text: every element's and block's fields (labels, values, help, options,
    expander and tab labels, captions, HTML, chart specs), the sidebar included."""
    from google.protobuf import text_format

    out = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(text_format.MessageToString(proto, as_utf8=True))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


@pytest.mark.slow
def test_pages_say_what_made_the_target(app_env, monkeypatch, tmp_path):
    """With neighbours by shared words as the teacher, no page says "BERT" (no BERT made the target) and the teacher
    is named as what it is, before training and after; the plan is one sentence with the rule behind an expander,
    and so is the choice of γ on Compare."""
    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))  # these runs only
    monkeypatch.setenv("BAT_PREBUILD_TEACHER", "0")  # the teacher as planned, not as built in the background
    at = new_app(timeout=120)
    at.switch_page("views/train.py").run()
    assert "BERT" not in page_text(at)
    assert [h.value for h in at.subheader][:2] == ["Teacher", "Student"]
    planned = "Target from: **chosen on dev data among neighbours by shared words, by"
    assert any(c.value.startswith(planned) for c in at.caption), [c.value for c in at.caption]
    at.selectbox(key="t_kind").set_value("lexical").run()
    target = "nearest neighbours by shared words (TF-IDF)"
    assert any(c.value.startswith(f"Target from: **{target}**. Trained once") for c in at.caption)
    plan = [m.value for m in at.markdown if m.value.startswith("**Plan:**")]
    assert plan == [f"**Plan:** 2 runs: λ = 0 (the baseline) and 0.5, on seed {SEED}, after at most 16 runs that "
                    "choose the background correction γ on dev data."]
    assert at.expander[0].label == "The whole plan"
    rule = at.expander[0].markdown[0].value
    assert f"The teacher is trained first: {target}." in rule and "Choosing γ: 4 more runs" in rule
    assert "minute" not in page_text(at)

    at.button(key="train").click().run()
    assert not at.exception and not at.error, texts(at.error)
    wait_for_job(at)
    job_text = " ".join(texts(at.success))
    assert "teacher trained in" in job_text and f"Teacher: {target}, as set" in job_text
    assert any(c.value.startswith(f"Target from: **{target}** (trained for these settings") for c in at.caption)
    assert any(f"the teacher for these settings is in the cache ({target})" in m.value for m in at.markdown)
    assert any(f"teacher: {target}" in o for o in at.selectbox(key="train_family_pick").options)

    for page in ("views/corpus.py", "views/train.py", "views/compare.py", "views/ldavis.py"):
        at.switch_page(page).run()
        assert not at.exception, at.exception
        assert "BERT" not in page_text(at), page
    at.switch_page("views/compare.py").run()
    settings = next(c.value for c in at.caption if c.value.startswith("K = "))
    assert f"teacher: {target}" in settings and "max length" not in settings
    assert at.select_slider(key="cmp_lam").label == "λ: weight of the teacher's target in the loss (trained values)"
    gamma = [c.value for c in at.caption if c.value.startswith("Background correction:")]
    assert len(gamma) == 2 and gamma[0].count(". ") == 0 and gamma[0].endswith(".")  # one sentence, then the rule
    how = next(e for e in at.expander if e.label == "How γ was chosen: the rule and every candidate")
    assert how.caption[0].value == gamma[1] and "Candidates:" in gamma[1]


@pytest.mark.slow
def test_default_teacher_is_built_in_the_background_once(app_env, monkeypatch, tmp_path):
    """Loading a corpus starts preparing the Train page's defaults in the background (the early first look, then the
    default teacher), once per corpus and settings however many sessions load it; the Train page says so, and a
    Train pressed with the defaults while it runs waits for it and reads its runs and teacher instead of training
    them again."""
    import threading

    import bat_core.grid as grid_mod
    import bat_core.teachers.build as build_mod
    from ui import prebuild
    from ui.defaults import default_plan, default_teacher
    from ui.jobs import manager

    trained: list[tuple[str, list[float]]] = []  # (thread, λ of the members) per call of the one training entry
    real_train = grid_mod._train_missing

    def spied(corpus, members, *a, **k):
        if members:
            trained.append((threading.current_thread().name, [d.lam for _, d in members]))
        return real_train(corpus, members, *a, **k)

    monkeypatch.setattr(grid_mod, "_train_missing", spied)

    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))
    gate, fits = threading.Event(), []
    real_build, real_fit = build_mod.build_teacher, build_mod._fit_frozen

    def held(*a, **k):  # the background build waits here until the test has pressed Train
        gate.wait(60)
        return real_build(*a, **k)

    def counted(job, *a, **k):
        fits.append((threading.current_thread().name, job.cfg.kind))
        return real_fit(job, *a, **k)

    monkeypatch.setattr(build_mod, "build_teacher", held)
    monkeypatch.setattr(build_mod, "_fit_frozen", counted)
    at = new_app()
    corpus = at.session_state["corpus"]
    build = prebuild.status(corpus, default_teacher())
    assert build is not None and build.running
    plan = default_plan(corpus)
    assert plan.early is not None and build.first_look == {plan.gamma.baseline.key, plan.early.key}
    at.switch_page("views/compare.py").run()  # nothing on disk yet: Compare says what is on its way
    assert not at.exception
    assert any(i.value.startswith("Nothing to compare yet: a first look with the Train page's default settings")
               for i in at.info), texts(at.info)
    new_app()  # another session loads the same corpus: the same build, no second one
    assert prebuild.start(corpus) is build
    assert [p for p in prebuild._builds if p.startswith(str(tmp_path))] == [str(tmp_path / "cache" / "teachers" /
                                                                              build.key)]
    at.switch_page("views/train.py").run()
    assert not at.exception
    assert any(c.value.startswith("Being prepared in the background since the corpus was loaded") for c in at.caption)
    at.button(key="train").click().run()  # while the build runs: the job waits for it
    job = manager().get(at.session_state["job_id"])
    time.sleep(0.5)
    assert job.running and job.step == 0
    gate.set()
    wait_for_job(at)
    # both teachers built once, by the background build: the early look's (no encoding), then the default one
    assert sorted(kind for _, kind in fits) == ["auto", "lexical"] and {n for n, _ in fits} == {"bat-teacher-prebuild"}
    # the first look trained once, in the background; the job trained the rest and none of it again
    ahead = [lams for n, lams in trained if n == "bat-teacher-prebuild"]
    assert ahead and 0.0 in ahead[0] and plan.early.lam in ahead[0], trained
    first_seed_base = [i for i, m in enumerate(plan.members) if m.key == plan.gamma.baseline.key]
    assert first_seed_base and job.result["cached"][first_seed_base[0]], job.result
    assert any("teacher and the first look prepared in the background since the corpus loaded, ready" in n
               for n in job.notes), job.notes
    assert build.state == "done"
    captions = texts(at.caption)
    assert any(c.startswith("✓ Ready: prepared in the background in") for c in captions), captions
    assert any("(trained for these settings: read from the cache)" in c for c in captions)


def test_a_training_without_that_teacher_stops_the_background_build(app_env, monkeypatch, tmp_path):
    """A Train that does not need the teacher being built ahead (here λ = 0 only) gets the cores to itself: the
    background build stops, quietly, and the Train page says nothing more about it."""
    import threading

    import bat_core.teachers.build as build_mod
    from ui import prebuild
    from ui.defaults import default_teacher

    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))
    gate, real = threading.Event(), build_mod.build_teacher
    monkeypatch.setattr(build_mod, "build_teacher", lambda *a, **k: (gate.wait(60), real(*a, **k))[1])
    at = new_app()
    build = prebuild.status(at.session_state["corpus"], default_teacher())
    at.switch_page("views/train.py").run()
    at.number_input(key="s_epochs").set_value(500)  # long enough to be running when the build looks
    at.multiselect(key="s_lams").set_value([]).run()
    at.button(key="train").click().run()
    from ui.jobs import manager

    job = manager().get(at.session_state["job_id"])
    gate.set()
    deadline = time.time() + 60
    while build.running and time.time() < deadline:
        time.sleep(0.05)
    assert job.running and build.state == "cancelled", (job.state, build.state, build.error)
    job.cancel()
    manager().wait(job, 60)
    at.run()
    assert not at.exception and not any("in the background" in c for c in texts(at.caption))


@pytest.mark.slow
def test_compare_shows_the_first_look_prepared_before_train(app_env, monkeypatch, tmp_path):
    """Once the background build has trained the default settings' first look, Compare shows it before any Train,
    saying what it is (the γ step's first candidate, not a choice); a Train with the defaults then takes those runs
    over and the page stops calling them prepared ahead."""
    from ui import prebuild
    from ui.defaults import default_plan, default_teacher

    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))
    at = new_app()
    corpus = at.session_state["corpus"]
    build = prebuild.status(corpus, default_teacher())
    assert build is not None and build.wait() >= 0 and build.state == "done", (build.state, build.error)
    plan = default_plan(corpus)
    at.switch_page("views/compare.py").run()
    assert not at.exception
    shown = [i.value for i in at.info if i.value.startswith("**Prepared when the corpus loaded**")]
    assert shown and f"γ = {plan.gamma.first_look.distill.background_correction:g}" in shown[0], texts(at.info)
    assert not any("Nothing to compare yet" in i.value for i in at.info)
    at.switch_page("views/train.py").run()
    at.button(key="train").click().run()
    wait_for_job(at)
    assert build.claimed
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert not any(i.value.startswith("**Prepared when the corpus loaded**") for i in at.info)


def test_loading_another_corpus_stops_the_older_background_build(app_env, monkeypatch, tmp_path, demo_corpus):
    """Only the corpus loaded last is prepared in the background: an older build still running stops for it."""
    import threading

    from teacher_fixtures import topic_docs

    import bat_core.teachers.build as build_mod
    from bat_core.config import CorpusConfig
    from bat_core.data.corpus import build_corpus
    from ui import prebuild

    gate, real = threading.Event(), build_mod.build_teacher
    monkeypatch.setattr(build_mod, "build_teacher", lambda *a, **k: (gate.wait(60), real(*a, **k))[1])
    cache = str(tmp_path / "cache")
    first = prebuild.start(demo_corpus, cache)
    other = build_corpus(topic_docs(30, seed=4)[0], CorpusConfig(min_df=1), name="other")
    second = prebuild.start(other, cache)
    assert first is not None and second is not None and first is not second
    gate.set()
    first.wait(), second.wait()
    assert (first.state, second.state) == ("cancelled", "done"), (first.error, second.error)


def test_without_an_early_look_nothing_is_labelled_prepared_ahead(app_env, monkeypatch, tmp_path, demo_corpus):
    """A default teacher that is not auto has no early look: the background build prepares the teacher alone, and
    no run (the chosen γ's included) is ever labelled as prepared before Train."""
    from ui import prebuild
    from ui.defaults import default_plan

    monkeypatch.setenv("BAT_TEACHER_KIND", "lexical")
    build = prebuild.start(demo_corpus, str(tmp_path / "cache"))
    assert build is not None and build.wait() >= 0 and build.state == "done"
    plan = default_plan(demo_corpus)
    assert plan.early is None and build.first_look == frozenset() and build.adopted is None
    assert prebuild.ahead_of(plan.gamma.first_look.key, str(tmp_path / "cache")) is None


def test_a_failing_background_teacher_never_reaches_a_page(app_env, monkeypatch, tmp_path):
    """A background build that fails is logged, not shown, and not retried: the Train job reports the error."""
    import bat_core.teachers.build as build_mod
    from ui import prebuild
    from ui.defaults import default_teacher

    def broken(*a, **k):
        raise RuntimeError("no encoder today")

    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(build_mod, "build_teacher", broken)
    at = new_app()
    build = prebuild.status(at.session_state["corpus"], default_teacher())
    deadline = time.time() + 30
    while build.running and time.time() < deadline:
        time.sleep(0.05)
    assert build.state == "error" and "no encoder today" in build.error
    assert prebuild.start(at.session_state["corpus"]) is build  # not retried
    at.switch_page("views/train.py").run()
    assert not at.exception and not at.error
    assert not any("in the background" in c for c in texts(at.caption))


def test_cancel_training(app_env):
    at = new_app()
    at.switch_page("views/train.py").run()
    at.number_input(key="s_epochs").set_value(500)
    at.number_input(key="s_k").set_value(7).run()
    at.multiselect(key="s_lams").set_value([]).run()
    at.button(key="train").click().run()
    from ui.jobs import manager

    job = manager().get(at.session_state["job_id"])
    assert job.running
    at.button(key="train_panel_cancel").click().run()
    manager().wait(job, 60)
    assert job.state == "cancelled"
    at.run()
    assert any("cancelled" in w.value for w in at.warning)
    assert at.button(key="train").disabled is False


def test_bad_train_settings_are_explained(app_env):
    at = new_app()
    at.switch_page("views/train.py").run()
    at.multiselect(key="s_lams").set_value([0.5, "abc"]).run()
    assert [e.value for e in at.error] == ["λ must be a number in [0, 1], not 'abc'"]  # bat_core.config.check_lambda
    assert at.button(key="train").disabled
    at.multiselect(key="s_lams").set_value([0.5, "2"]).run()
    assert [e.value for e in at.error] == ["λ must be in [0, 1], not 2"]
    assert at.button(key="train").disabled
    at.multiselect(key="s_lams").set_value([0.5, "0"]).run()  # 0 is the baseline, trained anyway
    assert not at.error and not at.button(key="train").disabled
    assert any(m.value.startswith("**Plan:** 2 runs: λ = 0 (the baseline) and 0.5,") for m in at.markdown)


def test_job_manager_outcomes():
    """Background jobs: results, user errors, cancellation and engine bugs all end in a state a page can show."""
    from bat_core.base.errors import BatError
    from bat_core.base.progress import ProgressEvent, check_stop
    from ui.jobs import Job, JobManager

    jm = JobManager()

    def ok(job):
        job.progress(ProgressEvent("student", 1, 2, metrics={"dev_npmi": 0.1}))
        job.progress(ProgressEvent("student", 2, 2, metrics={"dev_npmi": 0.05}))
        job.next_step("step one done")
        return {"x": 1}

    j = jm.wait(jm.start(Job("ok", "h", ["a", "b"]), ok))
    assert j.state == "done" and j.result == {"x": 1} and j.best["student"] == 0.1 and j.notes == ["step one done"]
    assert j.fraction == 1.0

    def user_error(job):
        raise BatError("λ = 2 is not in [0, 1]")

    j = jm.wait(jm.start(Job("bad", "h", ["a"]), user_error))
    assert j.state == "error" and j.error == "λ = 2 is not in [0, 1]" and j.detail is None

    def bug(job):
        raise ZeroDivisionError("oops")

    j = jm.wait(jm.start(Job("bug", "h", ["a"]), bug))
    assert j.state == "error" and "ZeroDivisionError" in j.error and "Traceback" in j.detail

    def slow(job):
        while True:
            check_stop(job.should_stop)
            time.sleep(0.01)

    j = jm.start(Job("slow", "h", ["a"]), slow)
    assert jm.start(Job("second", "h", ["a"]), ok) is j  # one job at a time
    j.cancel()
    assert jm.wait(j, 10).state == "cancelled"


def test_sidebar_names_the_gpu(app_env, monkeypatch):
    """With CUDA present the sidebar says which GPU trains (simulated: this machine has none)."""
    import torch

    from ui.sidebar import device_name

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    device_name.clear()
    try:
        at = new_app()
        assert "cuda (NVIDIA H100 80GB HBM3)" in " ".join(texts(at.sidebar.caption))
    finally:
        device_name.clear()


def test_app_job_and_cli_share_one_path_and_cache(app_env, tmp_path, capsys):
    """The Train page's job and `bat fit` with the same settings plan the same run key and give the same result, and
    the CLI finds a run the app trained in the shared cache instead of training it again."""
    from bat_core import cli, grid
    from bat_core.data.corpus import load_corpus
    from bat_core.runs.store import Run
    from ui.jobs import manager

    at = new_app()
    at.switch_page("views/train.py").run()
    at.number_input(key="s_k").set_value(4)
    at.number_input(key="s_epochs").set_value(3)
    at.multiselect(key="s_lams").set_value([]).run()  # λ = 0 only: no teacher needed
    at.button(key="train").click().run()
    wait_for_job(at)
    job = manager().get(at.session_state["job_id"])
    assert job.result["cached"] == [False] and len(job.run_keys) == 1
    run_dir = Path(app_env["BAT_CACHE_DIR"], "runs", job.run_keys[0])
    app_run = Run.load(run_dir)
    mtime = (run_dir / "run.json").stat().st_mtime_ns

    argv = ["fit", "demo", "--topics", "4", "--epochs", "3", "--lambdas", "0", "--seeds", "1", "--quiet"]
    cfg = cli.configs(cli.build_parser().parse_args([*argv, "--out", "unused"]))
    corpus = load_corpus("demo", cfg.corpus)
    assert corpus.hash == at.session_state["corpus"].hash
    planned = grid.plan(corpus, cfg.teacher, cfg.student, cfg.distill, [0.0], grid.seed_list(1))
    assert [m.key for m in planned.members] == job.run_keys and app_run.seed == SEED

    def no_training(corpus, members, *a, **k):
        assert not members, "the CLI retrained a run the app had trained"

    with pytest.MonkeyPatch.context() as mp:  # the CLI reads the app's run from the cache
        mp.setattr(grid, "_train_missing", no_training)  # the one call site of the student trainer
        assert cli.main([*argv, "--out", str(tmp_path / "o"), "--cache-dir", app_env["BAT_CACHE_DIR"]]) == 0
    assert (run_dir / "run.json").stat().st_mtime_ns == mtime
    got = json.loads((tmp_path / "o" / "summary.json").read_text())["runs"]
    assert [(r["seed"], r["topics"], r["test_npmi"]) for r in got] == \
        [(SEED, app_run.topics, app_run.metrics["test_npmi"])]

    # trained afresh by the CLI (empty cache), the same settings give the same run
    assert cli.main([*argv, "--out", str(tmp_path / "o2"), "--cache-dir", str(tmp_path / "c2")]) == 0
    fresh = Run.load(tmp_path / "c2" / "runs" / app_run.key)
    assert fresh.topics == app_run.topics
    assert fresh.metrics["test_npmi"] == pytest.approx(app_run.metrics["test_npmi"], abs=1e-6)
    capsys.readouterr()


# ------------------------------------------------------------------------------------- time estimate, coherence
def _fast_speeds(monkeypatch, gate=None):
    """The estimate's speed measurements replaced by fixed speeds (``gate``: they wait for it), so no test measures."""
    from bat_core.training import estimate as est

    def student(device="auto"):
        if gate is not None:
            assert gate.wait(30)
        return est.StudentSpeeds(per_cell=1e-9, per_cell_topic=1e-11, per_step=1e-3)

    monkeypatch.setattr(est, "student_speeds", student)
    monkeypatch.setattr(est, "encoder_speeds", lambda tcfg, device="auto": est.EncoderSpeeds(1e-3, 1e-5))
    monkeypatch.setattr(est, "window_tokens", lambda corpus, tcfg: ([64] * corpus.n_docs, [64] * corpus.n_docs))


def _wait_caption(at: AppTest, start: str, timeout: float = 30) -> str:
    deadline = time.time() + timeout
    while True:
        found = [c for c in texts(at.caption) if c.startswith(start)]
        if found:
            return found[0]
        assert time.time() < deadline, texts(at.caption)
        time.sleep(0.2)
        at.run()
        assert not at.exception, at.exception


def test_train_page_says_how_long_the_plan_will_take(app_env, monkeypatch, tmp_path):
    """The estimate is computed off the page's path ("estimating…" meanwhile), then shown under the plan; the job
    counts runs against it and says, when done, what it took next to it."""
    import threading

    from ui.jobs import manager

    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BAT_PREBUILD_TEACHER", "0")
    gate = threading.Event()
    _fast_speeds(monkeypatch, gate)
    at = new_app()
    at.switch_page("views/train.py").run()
    assert "Estimating the time on this machine…" in texts(at.caption)  # the page did not wait for the speeds
    gate.set()
    sentence = _wait_caption(at, "Estimated time on this machine: about ")
    assert re.search(r"about \d+ (s|min|h) for \d+ runs", sentence), sentence
    at.selectbox(key="s_gamma").set_value(0.0).run()  # other settings: another plan, estimated again
    sentence = _wait_caption(at, "Estimated time on this machine: about ")
    assert "for 2 runs" in sentence, sentence  # the baseline and λ = 0.5, one seed
    at.button(key="train").click().run()
    job = manager().get(at.session_state["job_id"])
    wait_for_job(at)
    assert job.clock is not None and job.clock.estimate is not None and job.clock.trained == 2
    assert "of about 2 runs trained" in job.clock.line(job.elapsed)
    assert any("estimated about" in s for s in texts(at.success)), texts(at.success)


def test_clock_eta_follows_the_runs():
    """The ETA: the estimate minus the elapsed time before any run lands, then what is left rescaled by how fast the
    finished part went against its estimate."""
    from bat_core.grid import Step
    from bat_core.training.estimate import Estimate
    from ui.estimates import Clock

    clock = Clock(Estimate(teacher_s=10.0, selection_s=0.0, selection_high_s=0.0, grid_s=40.0, runs=4, runs_high=4))
    assert "0 of about 4 runs trained" in clock.line(5.0) and "about 45 s left" in clock.line(5.0)
    clock.step(Step(0, "teacher", cached=False, wall_time_s=10.0))
    clock.step(Step(1, "λ=0", cached=False, wall_time_s=1.0, member=object(), run=object()))
    clock.step(Step(2, "λ=0 again", cached=True, wall_time_s=0.0, member=object(), run=object()))  # read: no work
    assert clock.trained == 1 and clock.done_s() == 20.0
    assert "about 60 s left" in clock.line(40.0)  # 30 s of work left, at half the estimated speed
    assert clock.took(70.0) == "took 70 s; estimated about 50 s before it started"


def test_the_eta_is_never_below_what_the_stack_in_training_needs(monkeypatch):
    """An estimate that priced a stack too cheap counted down to "1 s left" while the stack had minutes to go (it is
    corrected only when a stack lands); the stack's own pace is now a floor. And one run count per panel."""
    from bat_core.base.progress import ProgressEvent
    from bat_core.training.estimate import Estimate
    from ui import jobs
    from ui.estimates import Clock

    now = [1000.0]
    monkeypatch.setattr(jobs.time, "time", lambda: now[0])
    job = jobs.Job(label="x", corpus_hash="h", steps=["a"])
    assert job.stage_left() is None  # no pace yet
    job.progress(ProgressEvent("student λ=0 seed=1", 1, 2000))
    now[0] += 10.0
    job.progress(ProgressEvent("student λ=0 seed=1", 11, 2000))  # 1 s an epoch
    assert job.stage_left() == pytest.approx(1989.0)
    job.progress(ProgressEvent("student λ=0 seed=1", 1, 2000))  # a later stack under the same name starts afresh
    assert job.stage_left() is None

    clock = Clock(Estimate(teacher_s=0.0, selection_s=0.0, selection_high_s=0.0, grid_s=60.0, runs=2, runs_high=2))
    assert "about 10 s left (estimated" in clock.line(50.0)
    line = clock.line(50.0, runs=False, at_least=120.0)
    assert "about 2 min left at least" in line and "runs trained" not in line


SPARSE_WORDS = [a + b for a in ("bal", "cor", "dim", "fen", "gul", "hop", "jak", "kel", "lum", "mor", "nep", "pid",
                                "quo", "ras", "sut", "tov", "vex", "wim", "yar", "zen")
                for b in ("ada", "eko", "iru", "oma", "upi", "ent", "ark", "ost", "ulm", "iva")]


def test_compare_says_the_test_split_is_too_sparse(app_env, monkeypatch, tmp_path):
    """Short documents over many words: the test split sees few top-word pairs together. Compare shows the
    whole-corpus NPMI, the pairs seen and the top words' document frequency, says plainly which NPMI to read, and
    puts no arrow on the test NPMI."""
    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BAT_PREBUILD_TEACHER", "0")
    _fast_speeds(monkeypatch)
    rng = np.random.default_rng(5)
    data = "\n".join(" ".join(rng.choice(SPARSE_WORDS, 6, replace=False)) for _ in range(160)).encode()
    at = new_app(timeout=120)
    at.switch_page("views/corpus.py").run()
    at.file_uploader(key="upload").set_value(("sparse.txt", data, "text/plain")).run()
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, texts(at.error)
    metrics = train_and_compare(at)
    assert {"Baseline NPMI (whole corpus)", "BAT (λ=0.5) NPMI (whole corpus)", "Top-word pairs seen together",
            "Top words' mean document frequency"} <= set(metrics), list(metrics)
    assert not metrics["BAT (λ=0.5) NPMI (test)"].proto.delta  # no arrow on a test split too sparse to judge
    assert metrics["BAT (λ=0.5) NPMI (whole corpus)"].proto.delta
    assert metrics["Top-word pairs seen together"].value.startswith("test ")
    warning = " ".join(texts(at.warning))
    assert "too sparse to judge coherence on this corpus" in warning, warning
    assert "Read the NPMI against the whole corpus" in warning
