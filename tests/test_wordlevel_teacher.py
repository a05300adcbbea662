"""The word-level teachers (bat_core/teachers/wordlevel.py): the lexical neighbours mixed with each document's words
spread onto related words, by MiniLM's word vectors (wordvec), by co-occurrence alone (cooc) or by shuffled vectors
(wordvec-shuffled, the placebo). On short documents, where the lever is meant to work."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bat_core.base.errors import BatError
from bat_core.config import TEACHER_KINDS, WORD_KINDS, TeacherConfig
from bat_core.teachers.wordlevel import build_spread, mix, shuffled, spreads, word_vectors

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def short_corpus(demo_corpus):
    from bat_core.data.corpus import build_corpus

    return build_corpus([" ".join(t.split()[:15]) for t in demo_corpus.texts], demo_corpus.config, name="short")


@pytest.fixture(scope="module")
def teachers(short_corpus, tmp_path_factory):
    """The lexical teacher and the three word-level kinds, built once (MiniLM's weights are read, never run)."""
    from bat_core.teachers.build import build_teacher

    cache = tmp_path_factory.mktemp("wordlevel")
    return {kind: build_teacher(short_corpus, TeacherConfig(kind=kind, device="cpu"), cache)
            for kind in ("lexical", *WORD_KINDS)}


def _gate(train_counts: sp.spmatrix) -> np.ndarray:
    """V × V: PMI > 0 on the training documents' co-occurrence, the slow way (a pair never together fails)."""
    b = (np.asarray(sp.csr_matrix(train_counts).todense()) > 0).astype(np.int64)
    n = b.shape[0]
    c = b.T @ b
    df = b.sum(0)
    gate = (c > 0) & (c * n > np.outer(df, df))
    np.fill_diagonal(gate, False)
    return gate


def test_each_kind_gives_finite_logits_for_every_document(teachers, short_corpus):
    from bat_core.teachers.choice import teacher_name

    n, v = short_corpus.n_docs, short_corpus.vocab_size
    assert short_corpus.n_docs > 200 and np.median(np.asarray(short_corpus.counts.sum(1)).ravel()) < 25  # short
    words = {"wordvec": "MiniLM word vectors", "cooc": "co-occur", "wordvec-shuffled": "shuffled MiniLM word vectors"}
    for kind in WORD_KINDS:
        t = teachers[kind]
        z = t.dense()
        assert z.shape == (n, v) and np.isfinite(z).all()
        p = torch.softmax(torch.from_numpy(z).double(), dim=1)
        assert torch.allclose(p.sum(1), torch.ones(n, dtype=torch.float64))
        assert t.meta["teacher_kind"] == kind and t.meta["word_k"] == 10 and t.meta["word_weight"] == 0.5
        assert words[kind] in teacher_name(t.meta) and "shared words" in teacher_name(t.meta)
        assert t.meta["word_pairs_kept"] > 0 and t.meta["train_docs_spread"] > 0.5
        assert np.isfinite(t.meta["dev_perplexity"]) and "as set" in t.meta["choice"]
    # the lexical teacher's neighbours, k and ε: the word-level kinds mix exactly its distribution
    lex = teachers["lexical"]
    assert {teachers[k].meta["knn_k"] for k in WORD_KINDS} == {lex.meta["knn_k"]}
    for k in WORD_KINDS:
        assert teachers[k].meta["neighbour_dev_perplexity"] == pytest.approx(lex.meta["dev_perplexity"], rel=1e-3)


def test_the_teacher_is_the_mix_of_the_lexical_teacher_and_the_spread(teachers, short_corpus):
    """z = log((1 − w)·softmax(lexical) + w·spread), with the lexical teacher's own (leave-one-out) logits."""
    from bat_core.teachers.wordlevel import spread_for_kind

    train = short_corpus.splits["train"]
    in_train = np.zeros(short_corpus.n_docs, dtype=bool)
    in_train[train] = True
    docs = np.concatenate([train[:20], short_corpus.splits["dev"][:10]])
    ws = spread_for_kind("cooc", short_corpus.split_counts("train"), short_corpus.vocab, 10, "minilm", 42)
    spread = spreads(ws, sp.csr_matrix(short_corpus.counts), docs, in_train[docs])
    want = mix(teachers["lexical"].dense(docs), spread, 0.5)
    got = teachers["cooc"].dense(docs)
    p_want, p_got = (torch.softmax(torch.from_numpy(a).double(), 1).numpy() for a in (want, got))
    assert np.abs(p_want - p_got).max() < 2e-3  # the store keeps fp16 logits
    assert not np.allclose(p_got, torch.softmax(torch.from_numpy(teachers["lexical"].dense(docs)).double(), 1))


def test_spread_reaches_a_new_word_only_through_the_gate(short_corpus):
    """Mass on a word outside the document only where one of its words has that word past the gate (PMI > 0 on
    the training split, without the document itself when it is a training document); held-out documents get x·W."""
    counts = sp.csr_matrix(short_corpus.counts)
    train = short_corpus.splits["train"]
    in_train = np.zeros(short_corpus.n_docs, dtype=bool)
    in_train[train] = True
    ws = build_spread(counts[train], 10)
    gate = _gate(counts[train])
    w = ws.matrix.toarray()
    assert np.all(gate[w > 0]) and np.allclose(w.sum(1)[w.sum(1) > 0], 1.0)
    assert ((w > 0).sum(1) <= 10).all()
    held_out = np.concatenate([short_corpus.splits["dev"], short_corpus.splits["test"]])
    docs = np.concatenate([held_out, train[:40]])
    s = spreads(ws, counts, docs, in_train[docs]).toarray()
    x = counts[docs].toarray()
    reached_new = own_pairs_dropped = 0
    for i, d in enumerate(docs):
        own = x[i] > 0
        g = _gate(counts[np.setdiff1d(train, [d])]) if in_train[d] else gate  # the gate without the document
        for b in np.flatnonzero(s[i] > 0):
            if not own[b]:
                assert g[own, b].any(), (d, b)
                reached_new += 1
        rows = w
        if in_train[d]:  # pairs of its own words that fail the gate without it lose their share of W's row
            dropped = (w > 0) & own[None, :] & ~g
            own_pairs_dropped += int(dropped[own].sum())
            rows = np.where(dropped, 0.0, w)
            rows = rows / np.where(rows.sum(1, keepdims=True) > 0, rows.sum(1, keepdims=True), 1.0)
        want = x[i] @ rows
        assert np.allclose(s[i], want / want.sum() if want.sum() > 0 else want), d
    assert reached_new > 50 and own_pairs_dropped > 0


def test_the_placebo_keeps_the_gate_and_changes_the_words(short_corpus):
    counts = sp.csr_matrix(short_corpus.counts)
    train_counts = counts[short_corpus.splits["train"]]
    vectors = word_vectors("minilm", short_corpus.vocab)
    assert vectors.shape == (short_corpus.vocab_size, 384) and np.abs(vectors).sum(1).min() > 0
    real = build_spread(train_counts, 10, vectors)
    placebo = build_spread(train_counts, 10, shuffled(vectors, 42))
    gate = _gate(train_counts)
    assert real.gated_pairs == placebo.gated_pairs == int(gate.sum())
    assert np.all(gate[real.matrix.toarray() > 0]) and np.all(gate[placebo.matrix.toarray() > 0])
    a, b = real.matrix.toarray() > 0, placebo.matrix.toarray() > 0
    assert (a != b).sum() > 0.2 * a.sum()  # other related words, not only other weights
    assert np.array_equal(shuffled(vectors, 42), shuffled(vectors, 42))  # a fixed permutation
    # related by the vectors: the real vectors' neighbours of a word are closer in meaning than the placebo's
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    assert cos[a].mean() > cos[b].mean()


def test_settings_are_checked_and_split_the_cache():
    keys = {TeacherConfig(kind=k).key() for k in TEACHER_KINDS}
    assert len(keys) == len(TEACHER_KINDS)
    wv = TeacherConfig(kind="wordvec")
    assert len({wv.key(), TeacherConfig(kind="wordvec", word_k=5).key(),
                TeacherConfig(kind="wordvec", word_weight=0.25).key(), TeacherConfig(kind="wordvec", seed=1).key(),
                TeacherConfig(kind="wordvec", model="/elsewhere").key()}) == 5
    # what cannot change a teacher does not split its cache
    assert TeacherConfig(kind="cooc", model="/elsewhere").key() == TeacherConfig(kind="cooc").key()
    assert TeacherConfig(kind="wordvec", max_length=128).key() == wv.key()
    for kind in ("lexical", "transformer"):  # auto spreads short documents: its key has them (below)
        assert TeacherConfig(kind=kind, word_k=3, word_weight=0.9).key() == TeacherConfig(kind=kind).key()
        assert "word_k" not in TeacherConfig(kind=kind).to_dict()
    assert TeacherConfig.from_stored(TeacherConfig(kind="cooc", word_k=4).to_dict()).word_k == 4
    for bad in ({"word_k": 0}, {"word_weight": 0.0}, {"word_weight": 1.0}, {"head": "linear"}):
        with pytest.raises(BatError):
            TeacherConfig(kind="wordvec", **bad)
    assert not TeacherConfig(kind="wordvec").uses_encoder and TeacherConfig(kind="wordvec").uses_word_vectors
    assert not TeacherConfig(kind="cooc").uses_word_vectors


def test_auto_never_considers_the_word_level_kinds(short_corpus):
    from bat_core.explore.wording import planned_teacher
    from bat_core.teachers.neighbours import candidate_views, tfidf_features

    assert TeacherConfig().kind == "auto"
    train = short_corpus.splits["train"]
    views = candidate_views("auto", torch.zeros(short_corpus.n_docs, 4),
                            tfidf_features(short_corpus.counts, train), n_docs=short_corpus.n_docs)
    assert not set(views) & set(WORD_KINDS) and not any(v.startswith(("word", "cooc")) for v in views)
    assert "word vectors" not in planned_teacher(TeacherConfig())
    assert "word vectors" in planned_teacher(TeacherConfig(kind="wordvec"))


def test_cli_and_quality_benchmark_name_the_kinds():
    from bat_core.cli import build_parser, configs

    args = build_parser().parse_args(["fit", "demo", "--out", "x", "--teacher-kind", "wordvec-shuffled",
                                      "--teacher-word-k", "7", "--teacher-word-weight", "0.3"])
    t = configs(args).teacher
    assert (t.kind, t.word_k, t.word_weight) == ("wordvec-shuffled", 7, 0.3)
    assert configs(build_parser().parse_args(["fit", "demo", "--out", "x", "--teacher", "cooc"])).teacher.kind == "cooc"
    spec = importlib.util.spec_from_file_location("quality_bench", ROOT / "benchmarks" / "quality.py")
    quality = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quality)
    assert {a: quality.ARMS[a] for a in ("wordvec", "cooc", "placebo")} == \
        {"wordvec": "wordvec", "cooc": "cooc", "placebo": "wordvec-shuffled"}


def test_auto_spreads_short_documents_to_co_occurring_words(teachers, short_corpus, demo_corpus, tmp_path):
    """On short documents `auto` keeps the shared-word neighbours it chose and mixes in the co-occurrence spread (the
    cooc teacher's target, and a line that says so); on the demo's long documents it does not."""
    from bat_core.teachers.build import build_teacher
    from bat_core.teachers.choice import SHORT_DOC_SPREAD, choice_line

    auto = build_teacher(short_corpus, TeacherConfig(device="cpu"), tmp_path)
    assert auto.meta["teacher_kind"] == SHORT_DOC_SPREAD == "cooc"
    assert {r["teacher"] for r in auto.meta["candidates"]} >= {"lexical", "transformer", "cooc"}
    p_auto, p_cooc = (torch.softmax(torch.from_numpy(t.dense()).double(), 1).numpy() for t in (auto, teachers["cooc"]))
    assert np.abs(p_auto - p_cooc).max() < 2e-3
    line = choice_line(auto.meta)
    assert line.startswith("Teacher: nearest neighbours by shared words (TF-IDF), chosen because")
    assert "spread to the words that co-occur with them" in line and "transformer's neighbours beat" not in line
    long = build_teacher(demo_corpus, TeacherConfig(device="cpu"), tmp_path)
    assert long.meta["teacher_kind"] == "lexical" and "co-occur" not in choice_line(long.meta)
    assert TeacherConfig().key() != TeacherConfig(word_weight=0.25).key()  # auto's spread is in its key


def test_auto_encodes_only_first_windows_when_the_spread_wins(short_corpus, tmp_path, monkeypatch):
    """Rule 4: when the screen on first windows chooses the kind built without the encoder (on short documents the
    spread, not "lexical"), the other windows are not encoded and the choice is not made again. Windows of 16 tokens
    give most of these 15-word documents a second window, so only the rule (not "no document has a second window")
    can stop the second encoding."""
    from bat_core.teachers import build

    encoded: list[int] = []
    real = build._frozen_embeddings

    def counting(job, corpus, cache_dir):  # noqa: ANN001, ANN202
        features, info = real(job, corpus, cache_dir)
        encoded.append(job.cfg.max_chunks)
        assert info["docs_cut"] > 0  # the screen cut documents: they have more windows
        return features, info

    monkeypatch.setattr(build, "_frozen_embeddings", counting)
    auto = build.build_teacher(short_corpus, TeacherConfig(device="cpu", max_length=16), tmp_path)
    assert auto.meta["teacher_kind"] == "cooc" and auto.meta["screened"]
    assert encoded == [1]  # the screen's first windows only
