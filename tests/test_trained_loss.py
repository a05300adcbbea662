"""The loss that trains is the one a reader finds: one real step of the stacked trainer, recomputed by hand.

The trainer runs a real stack (a baseline member and a BAT member with T = 2, clipping, a fade and γ > 0). The test
records what one step of its last epoch saw (the minibatch rows and counts, the student's outputs) and the number it
backpropagated, and recomputes that number in numpy from the method's formulas (docs/bat-method.md section 4):

    loss_m = mean_d [ (1 − λ')·CE(x_d, x̂_d) + λ'·T²·CE(x̃_d, q^T_d) + KL_d ],   λ' = λ · fade(epoch)
    x̂ = p_bn·softmax(η_bn) + (1 − p_bn)·softmax(η),   q^T the same at temperature T
    x̃_d = N_d · softmax((clip_c(z_d) − γ·b) / T),     b the training split's log unigram frequencies

Dropping T², the (1 − λ), the fade, the KL's weight or the tempered BN branch makes it fail (the test checks that
each of those changes would move the number by more than its tolerance).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from teacher_fixtures import topic_docs

from bat_core.config import CorpusConfig, DistillConfig, StudentConfig
from bat_core.data.corpus import build_corpus
from bat_core.students.scholar import Scholar
from bat_core.training import scheduling, trainer

EPOCHS, BN_ANNEAL, ALPHA = 4, 1.0, 0.5
LAM, T, CLIP, FADE, GAMMA = 0.5, 2.0, 2.0, 0.5, 0.3


class FixedTeacher:
    """Teacher logits fixed in advance: distinct random numbers (so the clip's quantile has no ties)."""

    key = "fixed-teacher"
    meta: dict = {}

    def __init__(self, n_docs: int, vocab_size: int) -> None:
        self.z = np.random.default_rng(7).normal(0, 2, (n_docs, vocab_size)).astype(np.float32)

    def dense(self, rows: np.ndarray) -> np.ndarray:
        return self.z[rows]


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _hand_target(z: np.ndarray, x: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """x̃ = N_d·softmax((clip(z) − γ·b)/T): keep the logits at or above the (1 − c·u_d/V) quantile, u_d = the
    document's distinct words."""
    z = z.astype(np.float64).copy()
    V = z.shape[1]
    for d in range(len(z)):
        k = CLIP * (x[d] > 0).sum()
        if k < V:
            z[d, z[d] < np.quantile(z[d], 1 - k / V)] = -np.inf
    z = z - GAMMA * bg
    return x.sum(axis=1, keepdims=True) * _softmax(z / T)


def _hand_loss(step: dict, bg: np.ndarray, z: np.ndarray, p_bn: float, lam_kd: float, t_power: float = 2.0,
               kl_weight: float = 1.0, tempered_bn: bool = True, one_minus_lam: bool = True) -> float:
    """The summed members' loss of one step, in float64 (the keywords break one piece of the formula each)."""
    x = step["x"]
    eta, eta_bn = step["eta"].astype(np.float64), step["eta_bn"].astype(np.float64)
    mu, logvar = step["mu"].astype(np.float64), step["logvar"].astype(np.float64)
    K = mu.shape[-1]
    a = np.full(K, ALPHA)
    prior_mean = np.log(a) - np.log(a).mean()
    prior_var = (1 / a) * (1 - 2 / K) + (1 / K**2) * (1 / a).sum()
    kl = 0.5 * (np.exp(logvar) / prior_var + (mu - prior_mean) ** 2 / prior_var + np.log(prior_var)
                - logvar).sum(-1) - 0.5 * K
    recon = p_bn * _softmax(eta_bn) + (1 - p_bn) * _softmax(eta)
    ce = -(x * np.log(recon + 1e-10)).sum(-1)  # (M, B)
    base = (ce[0] + kl_weight * kl[0]).mean()
    q_t = (p_bn * _softmax(eta_bn[1] / T) if tempered_bn else p_bn * _softmax(eta_bn[1])) \
        + (1 - p_bn) * _softmax(eta[1] / T)
    kd = -(_hand_target(z, x, bg) * np.log(q_t + 1e-10)).sum(-1)
    nl = (1 - lam_kd if one_minus_lam else 1.0) * ce[1] + lam_kd * T**t_power * kd
    return float(base + (nl + kl_weight * kl[1]).mean())


def test_one_training_step_is_the_documented_loss(monkeypatch):
    docs, _ = topic_docs(30, seed=3)
    corpus = build_corpus(docs, CorpusConfig(min_df=1))
    teacher = FixedTeacher(corpus.n_docs, corpus.vocab_size)
    student = StudentConfig(n_topics=3, epochs=EPOCHS, emb_dim=8, bn_anneal=BN_ANNEAL, alpha=ALPHA, seed=5,
                            device="cpu")
    bat = DistillConfig(lam=LAM, temperature=T, clip=CLIP, fade=FADE, background_correction=GAMMA)

    steps: list[dict] = []
    losses: list[float] = []

    class Recording(Scholar):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            _, eta, eta_bn, mu, logvar = (None if t is None else t.detach().numpy().copy() for t in out)
            steps[-1].update(eta=eta, eta_bn=eta_bn, mu=mu, logvar=logvar)
            return out

    step = trainer._Teacher.step

    def recording_step(self, rows, blocks):
        steps.append({"rows": rows[0], "x": blocks[0].toarray().astype(np.float64)})
        return step(self, rows, blocks)

    backward = torch.Tensor.backward

    def recording_backward(self, *args, **kwargs):
        losses.append(self.detach().item())
        return backward(self, *args, **kwargs)

    monkeypatch.setattr(trainer, "student_class", lambda kind: Recording)
    monkeypatch.setattr(trainer._Teacher, "step", recording_step)
    monkeypatch.setattr(torch.Tensor, "backward", recording_backward)
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 1)  # one stack: the two members in one model
    trainer.fit_students(corpus, [(student, DistillConfig()), (student, bat)], teacher)

    assert len(steps) == len(losses) and len(losses) % EPOCHS == 0
    per_epoch = len(losses) // EPOCHS
    i = per_epoch * (EPOCHS - 1)  # the first step of the last epoch: the fade is on, 0 < p_bn < 1
    got = losses[i]
    p_bn = 1 - (EPOCHS - 1) / (BN_ANNEAL * EPOCHS)
    fade = min(1.0, 1 / (FADE * EPOCHS))  # one epoch left of the faded span
    assert 0 < p_bn < 1 and fade < 1
    train_counts = corpus.split_counts("train").toarray().sum(axis=0) + 1.0
    bg = np.log(train_counts) - np.log(train_counts.sum())
    z = teacher.dense(steps[i]["rows"])
    args = (steps[i], bg, z, p_bn)

    assert got == pytest.approx(_hand_loss(*args, LAM * fade), rel=1e-4)
    # each piece of the formula matters to this number by more than the tolerance
    for broken in (_hand_loss(*args, LAM), _hand_loss(*args, LAM * fade, t_power=1.0),
                   _hand_loss(*args, LAM * fade, kl_weight=LAM), _hand_loss(*args, LAM * fade, tempered_bn=False),
                   _hand_loss(*args, LAM * fade, one_minus_lam=False)):
        assert abs(broken - got) > 1e-3 * abs(got), broken


def test_sparse_target_trains_the_same_weights_as_the_dense_one(monkeypatch):
    """A clipped target reaches the loss as sparse rows (``SPARSE_TARGET_SHARE``): the skipped terms are 0 · log q,
    so the topics and θ must be the dense path's. At T = 1 the sparse path is the written-out gradient
    (``loss._MixtureNll``), equal up to float rounding; at T = 2 it is autograd's, bit for bit. Compared: β and θ,
    not every weight: the encoder's biases before its BatchNorm get a zero gradient in exact arithmetic, so Adam
    turns rounding noise into steps there, without effect on any output."""
    docs, _ = topic_docs(30, seed=3)
    corpus = build_corpus(docs, CorpusConfig(min_df=1))
    teacher = FixedTeacher(corpus.n_docs, corpus.vocab_size)
    student = StudentConfig(n_topics=3, epochs=EPOCHS, emb_dim=8, seed=5, device="cpu")
    base, untempered = (student, DistillConfig()), (student, DistillConfig(lam=LAM, clip=CLIP,
                                                                           background_correction=GAMMA))
    tempered = (student, DistillConfig(lam=1.0, temperature=T, clip=CLIP, background_correction=GAMMA))
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 1)
    from_dense, from_csr = trainer.SparseRows.from_dense, trainer.SparseRows.from_csr
    sparse_steps = []  # the targets as sparse rows: computed by the step, or read from the trainer's tables
    monkeypatch.setattr(trainer.SparseRows, "from_dense",
                        lambda *a: sparse_steps.append(1) or from_dense(*a))
    monkeypatch.setattr(trainer.SparseRows, "from_csr",
                        lambda *a: sparse_steps.append(1) or from_csr(*a))
    # T = 1 alone (q^T is x̂ itself), then a stack with T = 2 too (q^T computed apart)
    for members in ([base, untempered], [base, untempered, tempered]):
        runs = {}
        for share in (1.0, -1.0):  # every target sparse, then none
            monkeypatch.setattr(trainer, "SPARSE_TARGET_SHARE", share)
            runs[share] = trainer.fit_students(corpus, members, teacher)
            assert bool(sparse_steps) == (share > 0)
            sparse_steps.clear()
        for sparse, dense in zip(runs[1.0], runs[-1.0], strict=True):
            # to float rounding (≈ 2e-8 in β here; scaling the sparse teacher term by 1.0001 moves it by 1.3e-6)
            np.testing.assert_allclose(sparse.beta, dense.beta, rtol=0, atol=2e-7)
            np.testing.assert_allclose(sparse.theta, dense.theta, rtol=0, atol=5e-7)
            assert [h["loss"] for h in sparse.history] == pytest.approx([h["loss"] for h in dense.history], rel=1e-5)
