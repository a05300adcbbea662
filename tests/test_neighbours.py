"""The nearest-neighbour teacher head: leave-one-out by construction, and a real prediction of the bag of words."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bat_core.teachers.neighbours import knn_logits


def test_knn_logits_are_the_neighbours_mean_distribution():
    # 4 documents; embeddings put 0~1 and 2~3 together
    feats = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    counts = sp.csr_matrix(np.array([[2, 0, 0], [1, 1, 0], [0, 0, 3], [0, 1, 1]], dtype=np.float32))
    log_uni = np.log(np.array([0.25, 0.25, 0.5]))
    z = knn_logits(feats, counts, np.arange(4), np.arange(4), k=1, smoothing=0.1, log_unigram=log_uni).numpy()
    p = np.exp(z)
    # document 0's only neighbour is document 1 (never itself): 0.9·[.5, .5, 0] + 0.1·uni
    assert np.allclose(p[0], 0.9 * np.array([0.5, 0.5, 0.0]) + 0.1 * np.exp(log_uni), atol=1e-6)
    assert np.allclose(p[2], 0.9 * np.array([0.0, 0.5, 0.5]) + 0.1 * np.exp(log_uni), atol=1e-6)
    assert np.allclose(p.sum(1), 1, atol=1e-5)


def test_knn_head_teacher_beats_unigram(tiny_bert_dir):
    """On a 3-topic corpus a tiny random BERT's embeddings still cluster the topics well enough for the neighbour
    head to predict held-out bags of words better than word frequencies alone."""
    pytest.importorskip("transformers")
    from teacher_fixtures import make_topic_corpus

    from bat_core.config import TeacherConfig
    from bat_core.teachers.build import build_teacher

    corpus = make_topic_corpus()
    store = build_teacher(corpus, TeacherConfig(model=str(tiny_bert_dir), head="knn", max_length=64, device="cpu"))
    assert store.meta["head"] == "knn" and store.n_docs == corpus.n_docs
    assert store.meta["dev_perplexity"] < store.meta["unigram_dev_perplexity"]
    with pytest.raises(Exception, match="frozen"):
        TeacherConfig(head="knn", mode="top-n")
    assert store.meta["knn_k"] in (5, 10, 20, 30, 50, 100) and 0 < store.meta["knn_smoothing"] < 1


def test_select_knn_picks_lowest_dev_perplexity():
    from bat_core.teachers.neighbours import select_knn

    rng = np.random.default_rng(0)
    feats = torch.from_numpy(rng.normal(size=(60, 4)).astype(np.float32))
    counts = sp.csr_matrix(rng.poisson(0.5, size=(60, 30)).astype(np.float32) + 0)
    log_uni = np.log(np.full(30, 1 / 30))
    train, dev = np.arange(40), np.arange(40, 60)
    k, eps, ppl = select_knn(feats, counts, train, dev, log_uni)
    for kk, ee in ((5, 0.05), (30, 0.5), (10, 0.2)):
        _, _, other = select_knn(feats, counts, train, dev, log_uni, kk, ee)
        assert ppl <= other + 1e-9
    assert select_knn(feats, counts, train, dev, log_uni, 7, 0.3)[:2] == (7, 0.3)
