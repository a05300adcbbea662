"""θ after training and for new documents: BN statistics refreshed, clipped logits at inference, weights saved."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bat_core.base.errors import BatError
from bat_core.config import DistillConfig, StudentConfig
from bat_core.runs.store import Run
from bat_core.students.inference import encode_theta, student_from_run, transform
from bat_core.students.layers import SparseRows
from bat_core.training.trainer import fit_student

CFG = StudentConfig(n_topics=6, epochs=8, emb_dim=32, seed=0)


class Teacher:
    key = "fake"
    meta = {"mode": "fake"}

    def __init__(self, logits: np.ndarray) -> None:
        self.logits = logits

    def dense(self, rows):
        return self.logits[rows]


@pytest.fixture(scope="module")
def run(demo_corpus) -> Run:
    return fit_student(demo_corpus, CFG)


def test_transform_of_the_training_documents_reproduces_theta(demo_corpus, run):
    theta = transform(run, demo_corpus.counts)
    assert theta.shape == run.theta.shape and np.allclose(theta.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(theta, run.theta, atol=1e-5)


def test_eval_theta_uses_the_training_set_batch_statistics(demo_corpus, run):
    """Eval-mode θ of the training documents = BatchNorm with the statistics of the whole training set (not the
    running averages that momentum 1e-3 leaves after a few hundred steps, still close to their initial (0, 1))."""
    model = student_from_run(run)
    train = demo_corpus.splits["train"]
    x = SparseRows.build([sp.csr_matrix(demo_corpus.counts[train], dtype=np.float32)], [0], model.vocab_size,
                         torch.device("cpu"))
    with torch.no_grad():
        h_mu, _ = model.encode_pre_bn(model.encoder_input(x))
        mu = (h_mu - h_mu.mean(1, keepdim=True)) / torch.sqrt(h_mu.var(1, unbiased=False, keepdim=True) + 1e-3)
        theta = torch.softmax(mu + model.mean_bn.shift[:, None], dim=-1)[0].numpy()
    np.testing.assert_allclose(run.theta[train], theta, atol=1e-5)
    # the running statistics training left behind would have given something else
    assert not np.allclose(run.state["mean_bn.running_var"], 1.0, atol=0.05)


def test_a_near_copy_of_a_document_gets_the_same_top_topic(demo_corpus, run):
    train = demo_corpus.splits["train"]
    top2 = np.sort(run.theta[train], axis=1)[:, -2:]
    confident = train[(top2[:, 1] - top2[:, 0]) > 0.2][:20]
    assert len(confident) >= 5
    near = demo_corpus.counts[confident].toarray()
    rng = np.random.default_rng(0)
    for row in near:  # one more occurrence of one of its words, one fewer of another
        words = np.flatnonzero(row)
        row[rng.choice(words)] += 1
        row[rng.choice(np.flatnonzero(row > 1)) if (row > 1).any() else words[0]] -= 1
    theta = transform(run, sp.csr_matrix(near))
    assert (theta.argmax(1) == run.theta[confident].argmax(1)).all()


def test_saved_run_keeps_the_weights_and_old_runs_still_load(demo_corpus, run, tmp_path):
    run.save(tmp_path / "new")
    loaded = Run.load(tmp_path / "new")
    assert loaded.state.keys() == run.state.keys() and "embeddings" in loaded.state
    np.testing.assert_array_equal(transform(loaded, demo_corpus.counts[:5]), transform(run, demo_corpus.counts[:5]))
    old = Run(key=run.key, config=run.config, beta=run.beta, background=run.background, theta=run.theta,
              metrics=run.metrics, history=run.history, topics=run.topics)  # as runs were saved before
    old.save(tmp_path / "old")
    reloaded = Run.load(tmp_path / "old")
    assert reloaded.state == {} and np.array_equal(reloaded.theta, run.theta)
    with pytest.raises(BatError, match="without the student's weights"):
        transform(reloaded, demo_corpus.counts[:5])
    with pytest.raises(BatError, match="vocabulary"):
        transform(run, sp.csr_matrix((2, 7)))


def test_inference_feeds_the_encoder_the_clipped_logits(demo_corpus):
    x = demo_corpus.counts.toarray()
    logits = (np.log1p(x) * 2 + np.random.default_rng(1).normal(0, 1, x.shape)).astype(np.float32)
    distill = DistillConfig(lam=0.5, encode_logits="raw", clip=2.0)
    r = fit_student(demo_corpus, CFG, distill, Teacher(logits))
    np.testing.assert_allclose(transform(r, demo_corpus.counts, logits), r.theta, atol=1e-5)
    raw = encode_theta(student_from_run(r), sp.csr_matrix(demo_corpus.counts, dtype=np.float32),
                       lambda rows: logits[rows], clips=[None])[0]
    assert np.abs(raw - r.theta).max() > 1e-2  # unclipped logits (what inference used to feed) give another θ
    with pytest.raises(BatError, match="teacher"):
        transform(r, demo_corpus.counts[:3])
