"""The BAT teacher: training lowers dev perplexity, caching, long documents, cross-fitting, model errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from teacher_fixtures import TOPICS, make_topic_corpus

from bat_core.base.distributed import DistEnv
from bat_core.base.errors import BatError
from bat_core.config import TeacherConfig
from bat_core.teachers import build as T
from bat_core.teachers import encoder as E
from bat_core.teachers.store import TeacherLogits


@pytest.fixture(scope="module")
def topic_corpus():
    return make_topic_corpus()


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny model's ops are too small to gain from threads, and lose a lot when other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(model_dir, **kw) -> TeacherConfig:
    base = dict(model=str(model_dir), device="cpu", max_length=64, head="linear", head_epochs=40, head_lr=1e-2,
                patience=10)
    base.update(kw)
    return TeacherConfig(**base)


def test_frozen_teacher_learns_and_exports_every_document(topic_corpus, tiny_bert_dir):
    events = []
    store = T.build_teacher(topic_corpus, _cfg(tiny_bert_dir), progress=events.append)
    m = store.meta
    assert isinstance(store, TeacherLogits) and store.n_docs == topic_corpus.n_docs
    assert store.vocab_size == topic_corpus.vocab_size
    start = m["history"][0]
    assert start["epoch"] == 0 and m["folds"][0]["best_epoch"] > 0
    assert m["folds"][0]["dev_perplexity"] < 0.8 * start["dev_perplexity"]  # training lowered dev perplexity
    assert m["dev_perplexity"] < 0.8 * m["unigram_dev_perplexity"]
    assert m["dev_perplexity"] == pytest.approx(m["folds"][0]["dev_perplexity"], rel=1e-4)
    for key in ("mode", "model", "model_source", "train_perplexity", "test_perplexity", "cross_fit_folds", "k", "V",
                "n_docs", "corpus_hash", "wall_time_s", "device", "encoder", "windows"):
        assert key in m
    assert m["mode"] == "frozen" and m["encoder"]["hidden_size"] == 64 and m["key"].startswith(topic_corpus.hash)
    stages = {e.stage for e in events}
    assert {"teacher: load", "teacher: encode", "teacher: train head", "teacher: export"} <= stages
    # the teacher's favourite words for a space document are space words
    doc = int(np.flatnonzero([t.split().count("rocket") + t.split().count("orbit") > 1
                              for t in topic_corpus.texts])[0])
    idx, _ = store.top_words(doc, 5)
    vocab = np.array(topic_corpus.vocab)
    assert sum(w in TOPICS["space"] for w in vocab[idx]) >= 4


def test_deterministic_on_cpu(topic_corpus, tiny_bert_dir):
    cfg = _cfg(tiny_bert_dir, head_epochs=5)
    a = T.build_teacher(topic_corpus, cfg).dense()
    b = T.build_teacher(topic_corpus, cfg).dense()
    np.testing.assert_array_equal(a, b)


def test_top_n_fine_tuning_lowers_dev_perplexity(topic_corpus, tiny_bert_dir):
    cfg = _cfg(tiny_bert_dir, mode="top-n", top_n_layers=1, epochs=3, batch_size=8, lr=1e-3, max_length=48)
    store = T.build_teacher(topic_corpus, cfg)
    m = store.meta
    assert m["encoder"]["layers_trained"] == 1
    assert m["folds"][0]["dev_perplexity"] < m["history"][0]["dev_perplexity"]
    assert len(m["history"]) == 4 and np.isfinite(store.dense()).all()


def test_full_mode_with_cls_pooling_and_mlp_head_runs(topic_corpus, tiny_bert_dir):
    cfg = _cfg(tiny_bert_dir, mode="full", pooling="cls", head="mlp", epochs=1, batch_size=16, max_length=32)
    store = T.build_teacher(topic_corpus, cfg)
    assert store.meta["encoder"]["layers_trained"] == 2 and store.meta["head"] == "mlp"
    assert np.isfinite(store.dense()).all() and np.isfinite(store.meta["dev_perplexity"])


def test_cache_reuse_does_not_touch_the_encoder(topic_corpus, tiny_bert_dir, tmp_path, monkeypatch):
    cfg = _cfg(tiny_bert_dir, head_epochs=5)
    first = T.build_teacher(topic_corpus, cfg, cache_dir=tmp_path)
    assert (tmp_path / "teachers" / f"{topic_corpus.hash}-{cfg.key()}" / "meta.json").is_file()
    assert not first.meta["embeddings_cached"]

    import transformers

    def refuse(*a, **k):
        raise AssertionError("the encoder must not be loaded again")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", refuse)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    with monkeypatch.context() as mp:  # and nothing is trained again either: the store is read
        mp.setattr(T, "_fit_frozen", refuse)
        mp.setattr(T, "_fit_finetune", refuse)
        again = T.build_teacher(topic_corpus, cfg, cache_dir=tmp_path)
    assert again.key == first.key and again.path is not None
    np.testing.assert_array_equal(again.dense(), first.dense())
    # other head settings: a new teacher, but the frozen embeddings are reused without the encoder too
    other = T.build_teacher(topic_corpus, _cfg(tiny_bert_dir, head_epochs=3, head="mlp"), cache_dir=tmp_path)
    assert other.key != first.key and other.meta["embeddings_cached"]
    # the device is not part of the key: the same teacher wherever it was trained
    assert _cfg(tiny_bert_dir, head_epochs=5, device="auto").key() == cfg.key()


def test_chunking_and_truncation_differ_only_on_long_documents(tiny_bert_dir):
    tok, hf, _ = E.load_encoder(str(tiny_bert_dir))
    enc = E.DocEncoder(hf.eval(), "mean", tok.pad_token_id, None)
    short = "the rocket reached orbit"
    long = " ".join(["astronaut moon launch"] * 30 + ["pasta cheese sauce"] * 30)
    texts = [short, long]
    chunked = E.tokenize(tok, texts, max_length=32, long_docs="chunk", max_chunks=4)
    cut = E.tokenize(tok, texts, max_length=32, long_docs="truncate", max_chunks=4)
    assert np.diff(chunked.start).tolist() == [1, 4] and np.diff(cut.start).tolist() == [1, 1]
    assert chunked.truncated == 1 and cut.truncated == 1  # 180 word-pieces > 4 windows of 30
    assert all(len(w) <= 32 for w in chunked.ids) and chunked.ids[1] == cut.ids[1]
    with torch.no_grad():
        a, b = enc(chunked, np.arange(2)), enc(cut, np.arange(2))
        windows = enc.embed_chunks(chunked.ids[1:5])
    torch.testing.assert_close(a[0], b[0])
    assert (a[1] - b[1]).abs().max() > 1e-3  # the later (pasta) windows change the long document's embedding
    w = torch.as_tensor(chunked.weight[1:5]).unsqueeze(1)
    torch.testing.assert_close(a[1], (windows * w).sum(0) / w.sum(), atol=1e-5, rtol=1e-5)


def test_cross_fitting_routes_out_of_fold_logits(topic_corpus, tiny_bert_dir):
    # the routing itself, with fake teachers whose logits are their fold number + 1
    n, v = 12, 6
    held_out = [np.array([0, 3, 5]), np.array([1, 2, 4])]
    fold_of = T.fold_assignment(n, held_out)
    counts = sp.csr_matrix(np.ones((n, v), dtype=np.float32))
    job = T._Job(TeacherConfig(top_k=v), counts, torch.device("cpu"), DistEnv(), None, None, [])
    splits = {"train": np.arange(6), "dev": np.arange(6, 9), "test": np.arange(9, 12)}
    store, _ = T._export(job, n, fold_of, 2, lambda f, docs: torch.full((len(docs), v), f + 1.0),
                         np.arange(n)[::-1].copy(), 5, splits)
    got = store.dense()[:, 0]
    np.testing.assert_allclose(got, [1, 2, 2, 1, 2, 1, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5], atol=1e-3)

    # and end to end: every train document belongs to exactly one held-out fold, dev/test to none
    store = T.build_teacher(topic_corpus, _cfg(tiny_bert_dir, cross_fit_folds=3, head_epochs=5))
    fold = np.asarray(store.fold)
    train = topic_corpus.splits["train"]
    assert set(np.unique(fold[train])) == {0, 1, 2} and np.all(fold[np.setdiff1d(np.arange(len(fold)), train)] == -1)
    assert np.bincount(fold[train]).min() >= len(train) // 3 - 1
    assert len(store.meta["folds"]) == 3 and store.meta["train_is_out_of_fold"]


def test_cross_fitting_needs_enough_documents():
    with pytest.raises(BatError, match="at least"):
        T._folds(np.arange(5), 3, 0)


def test_bad_model_names_are_bat_errors(topic_corpus, tmp_path, monkeypatch):
    import socket

    import transformers

    # an unreachable hub: one quick TCP check, then a BatError, never a download attempt (a minute of retries)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    checks, downloads = [], []

    def unreachable(*a, **k):
        checks.append(a)
        raise OSError("network is unreachable")

    def from_pretrained(*a, local_files_only=False, **k):
        if not local_files_only:
            downloads.append(a)
        raise OSError("not in the local cache")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", from_pretrained)
    with pytest.raises(BatError, match="cannot load teacher model 'no-such-org/no-such-model'.*cannot be reached"):
        T.build_teacher(topic_corpus, TeacherConfig(model="no-such-org/no-such-model", device="cpu"))
    assert len(checks) == 1 and downloads == []
    monkeypatch.undo()
    with pytest.raises(BatError, match="does not exist"):
        E.resolve_model(str(tmp_path / "missing" / "model"))
    with pytest.raises(BatError, match="no config.json"):
        E.resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(BatError, match="cannot load teacher model"):
        E.load_encoder(str(tmp_path))
    with pytest.raises(BatError):
        TeacherConfig(mode="half")


def test_minilm_resolves_offline():
    path, local = E.resolve_model("minilm")
    assert local and path.endswith("model")


@pytest.mark.slow
def test_real_minilm_frozen_teacher_beats_unigram_on_demo(demo_corpus):
    cfg = TeacherConfig(device="cpu", max_length=128, long_docs="truncate", head="linear")
    store = T.build_teacher(demo_corpus, cfg)
    m = store.meta
    assert m["dev_perplexity"] < 0.7 * m["unigram_dev_perplexity"]
    assert m["test_perplexity"] < 0.7 * m["unigram_test_perplexity"]


def test_should_stop_cancels(topic_corpus, tiny_bert_dir, tmp_path):
    from bat_core.base.progress import Cancelled

    with pytest.raises(Cancelled):
        T.build_teacher(topic_corpus, _cfg(tiny_bert_dir), cache_dir=tmp_path, should_stop=lambda: True)
    assert not (tmp_path / "teachers").exists()  # nothing half-made is cached


def test_warm_up_imports_the_teacher_and_never_raises():
    import subprocess
    import sys

    code = ("import sys\n"
            "from bat_core import grid  # noqa: F401 - the front door imports no transformers\n"
            "from bat_core.teachers import warmup\n"
            "assert 'transformers' not in sys.modules and 'bat_core.teachers.build' not in sys.modules\n"
            "warmup.warm_up('/no/such/model/folder')\n"  # a bad model fails later, at the real load
            "warmup.warm_up('minilm')\n"
            "assert 'bat_core.teachers.build' in sys.modules\n"
            "assert 'transformers.models.bert.modeling_bert' in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_cpu_bf16_autocast_follows_the_override(monkeypatch):
    from bat_core.base.device import amp_dtype

    cpu = torch.device("cpu")
    monkeypatch.setenv("BAT_CPU_BF16", "0")
    assert amp_dtype(cpu) is None
    monkeypatch.setenv("BAT_CPU_BF16", "1")
    assert amp_dtype(cpu) is torch.bfloat16
    monkeypatch.delenv("BAT_CPU_BF16")  # unset: whatever the CPU does in hardware
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(getattr(torch.cpu, n, lambda: False)() for n in probes)
    assert (amp_dtype(cpu) is torch.bfloat16) == native
