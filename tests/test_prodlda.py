"""ProdLDA, the second student: its loss written out in numpy, stacked = alone, and the one setting that picks it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from test_grid import TINY, Teacher, _assert_same_run

from bat_core.base.errors import BatError
from bat_core.config import DistillConfig, StudentConfig
from bat_core.runs.store import run_key
from bat_core.students.inference import transform
from bat_core.students.layers import SparseRows
from bat_core.students.loss import bat_loss, bow_nll, cross_entropy, teacher_target
from bat_core.students.prodlda import ProdLDA, student_class
from bat_core.students.scholar import Scholar, reconstruction
from bat_core.training.trainer import fit_student, fit_students

X = np.array([[3, 0, 1, 0, 2, 0], [0, 1, 0, 4, 0, 1], [1, 1, 1, 0, 0, 2]], dtype=np.float32)


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(a))


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _model() -> tuple[ProdLDA, dict[str, np.ndarray]]:
    """A 1-member ProdLDA (V 6, K 3, H 4, α 0.5) with random weights, BN shifts and running statistics."""
    model = ProdLDA(6, 3, None, emb_dim=4, alpha=0.5, dropout=0.2, generators=[torch.Generator().manual_seed(3)])
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for bn in (model.mean_bn, model.logvar_bn, model.eta_bn):
            bn.shift.copy_(torch.from_numpy(rng.normal(0, 0.3, bn.shift.shape).astype(np.float32)))
            bn.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.5, bn.shift.shape).astype(np.float32)))
            bn.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2, bn.shift.shape).astype(np.float32)))
    w = {k: v[0].detach().double().numpy() for k, v in model.state_dict().items() if k not in ("prior_mean",
                                                                                               "prior_var")}
    return model, w


def _bn_eval(h: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    return (h - w[f"{name}.running_mean"]) / np.sqrt(w[f"{name}.running_var"] + 1e-3) + w[f"{name}.shift"]


def _bn_train(h: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    return (h - h.mean(axis=0)) / np.sqrt(h.var(axis=0) + 1e-3) + w[f"{name}.shift"]


def _hand_loss(w: dict[str, np.ndarray], bn, masks: dict[str, np.ndarray] | None = None,
               eps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(CE(x, x̂), KL, η) per document, ProdLDA as Srivastava & Sutton write it, in float64."""
    masks = masks or {}
    h1 = _softplus(X @ w["embeddings"] + w["hidden_b1"])
    h2 = _softplus(h1 @ w["hidden_w"] + w["hidden_b"]) * masks.get("pi", 1.0)
    mu = bn(h2 @ w["mean_w"] + w["mean_b"], w, "mean_bn")
    logvar = bn(h2 @ w["logvar_w"] + w["logvar_b"], w, "logvar_bn")
    z = mu if eps is None else mu + np.exp(0.5 * logvar) * eps
    theta = _softmax(z) * masks.get("theta", 1.0)
    eta = bn(theta @ w["beta"], w, "eta_bn")
    ce = -(X * np.log(_softmax(eta) + 1e-10)).sum(axis=1)
    # Laplace approximation of Dirichlet(α = 0.5), K = 3: μ₀ = log α − mean(log α) = 0,
    # σ₀²_k = (1/α)(1 − 2/K) + (1/K²)·Σ_j 1/α = 2·(1/3) + (1/9)·6 = 4/3
    K, a = 3, 0.5
    var0 = (1 / a) * (1 - 2 / K) + (1 / K**2) * K * (1 / a)
    assert var0 == pytest.approx(4 / 3)
    var = np.exp(logvar)
    kl = 0.5 * (var / var0 + mu**2 / var0 - 1 + np.log(var0) - logvar).sum(axis=1)
    return ce, kl, eta


def _rows() -> SparseRows:
    return SparseRows.build([sp.csr_matrix(X)], [0], 6, torch.device("cpu"))


def test_eval_loss_matches_hand_computation():
    model, w = _model()
    np.testing.assert_allclose(model.prior_mean.numpy(), 0, atol=1e-7)
    np.testing.assert_allclose(model.prior_var.numpy(), 4 / 3, rtol=1e-6)
    model.eval()
    with torch.no_grad():
        theta, eta, eta_bn, mu, logvar = model(_rows())
        ce = bow_nll(_rows(), reconstruction(eta, eta_bn, 0.0))[0].numpy()
        kl = model.kl(mu, logvar)[0].numpy()
    assert eta_bn is None  # the BN'd decoder is η itself: no p_bn mixture
    ce_hand, kl_hand, eta_hand = _hand_loss(w, _bn_eval)
    np.testing.assert_allclose(eta[0].numpy(), eta_hand, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ce, ce_hand, rtol=1e-5)
    np.testing.assert_allclose(kl, kl_hand, rtol=1e-5, atol=1e-6)
    assert kl_hand.min() > 0.01 and ce_hand.min() > 1  # not a vacuous comparison of zeros

    # the distillation term on ProdLDA's η: λ·T²·CE(N_d·softmax(z/T), softmax(η/T)) + (1 − λ)·CE(x, softmax(η))
    z = np.random.default_rng(1).normal(0, 2, X.shape).astype(np.float32)
    lam, T = 0.4, 2.0
    target = teacher_target(torch.from_numpy(z), torch.from_numpy(X), T)
    loss = bat_loss(_rows(), eta, None, 0.0, torch.from_numpy(kl)[None], torch.tensor([lam]), T, target[None])
    tgt_hand = X.sum(axis=1, keepdims=True) * _softmax(z / T)
    kd_hand = -(tgt_hand * np.log(_softmax(eta_hand / T) + 1e-10)).sum(axis=1)
    hand = lam * T**2 * kd_hand + (1 - lam) * ce_hand + kl_hand
    np.testing.assert_allclose(loss.numpy(), [hand.mean()], rtol=1e-5)


def test_training_step_matches_hand_computation():
    """Train mode: batch statistics in all three BatchNorms, the drawn dropout masks and ε."""
    model, w = _model()
    model.train()
    noise = model.draw([torch.Generator().manual_seed(5)], 3, torch.device("cpu"), torch.tensor([0]))
    assert set(noise) == {"pi", "eps", "theta"} and (noise["pi"] == 0).any()
    _, eta, _, mu, logvar = model(_rows(), None, noise)
    ce = cross_entropy(torch.from_numpy(X), reconstruction(eta, None, 0.0)[0])
    masks = {k: noise[k][0].double().numpy() for k in ("pi", "theta")}
    ce_hand, kl_hand, _ = _hand_loss(w, _bn_train, masks, noise["eps"][0].double().numpy())
    np.testing.assert_allclose(ce.detach().numpy(), ce_hand, rtol=1e-4)
    np.testing.assert_allclose(model.kl(mu, logvar)[0].detach().numpy(), kl_hand, rtol=1e-4, atol=1e-5)


def test_decoder_folds_the_eval_batchnorm_exactly():
    """decoder(): softmax(θ·B + b) is the eval-mode decoder (test perplexity); the Run's β is centred over topics."""
    model, _ = _model()
    model.eval()
    theta = torch.softmax(torch.randn(1, 5, 3, generator=torch.Generator().manual_seed(2)), dim=-1)
    B, b = model.decoder()
    with torch.no_grad():
        direct = model.eta_bn(torch.bmm(theta, model.beta))
    np.testing.assert_allclose(torch.softmax(theta @ B + b.unsqueeze(1), -1).detach().numpy(),
                               torch.softmax(direct, -1).numpy(), rtol=1e-5, atol=1e-7)
    beta, background = model.run_arrays()
    np.testing.assert_allclose(beta.sum(dim=1).detach().numpy(), 0, atol=1e-5)
    np.testing.assert_allclose((model.beta - beta).std(dim=1).detach().numpy(), 0, atol=1e-6)  # a shift per word
    assert not background.any()
    model.refresh_decoder(theta)
    h = torch.bmm(theta.double(), model.beta.detach().double())
    np.testing.assert_allclose(model.eta_bn.running_var.numpy(), h.var(dim=1, unbiased=False).numpy(), rtol=1e-5)


def test_prodlda_rejects_logits_in_the_encoder():
    with pytest.raises(BatError, match="encode_logits"):
        ProdLDA(6, 3, None, encode_logits="raw")


def test_prodlda_with_logits_in_the_encoder_is_refused_when_planned(demo_corpus):
    """Said by plan(), before the teacher is built (it used to come after the teacher, seconds to minutes later)."""
    from bat_core.config import DistillConfig, TeacherConfig
    from bat_core.grid import plan

    with pytest.raises(BatError, match="encode_logits"):
        plan(demo_corpus, TeacherConfig(), StudentConfig(student="prodlda"), DistillConfig(encode_logits="raw"),
             [0, 0.5], [1])


def test_student_setting_validated_and_scholar_keys_unchanged():
    assert student_class("scholar") is Scholar and student_class("prodlda") is ProdLDA
    with pytest.raises(BatError, match="student must be"):
        StudentConfig(student="lda")
    scholar, prod = StudentConfig(), StudentConfig(student="prodlda")
    assert "student" not in scholar.to_dict() and prod.to_dict()["student"] == "prodlda"
    assert StudentConfig.from_dict(scholar.to_dict()) == scholar and StudentConfig.from_dict(prod.to_dict()) == prod
    # the run key of a default Scholar run, as computed before the student setting existed
    old = {"n_topics": 20, "epochs": 200, "batch_size": 200, "lr": 0.002, "beta1": 0.99, "alpha": 0.5,
           "bn_anneal": 0.25, "emb_dim": 300, "dropout": 0.2, "npmi_top_n": 10, "patience": None, "seed": 0,
           "device": "auto"}
    d = DistillConfig().to_dict()
    assert run_key("h", None, scholar.to_dict(), d) == run_key("h", None, old, d)
    assert run_key("h", None, prod.to_dict(), d) != run_key("h", None, old, d)


def test_cli_has_the_student_flag():
    import argparse

    from bat_core.cli import STUDENT, _add_flags, _config

    p = argparse.ArgumentParser()
    _add_flags(p, STUDENT)
    assert _config(STUDENT, p.parse_args(["--student", "prodlda"])).student == "prodlda"
    assert _config(STUDENT, p.parse_args([])).student == "scholar"


def _cfg(seed: int) -> StudentConfig:
    return StudentConfig(**{**TINY.to_dict(), "seed": seed, "student": "prodlda"})


def test_stacked_prodlda_member_equals_alone(demo_corpus):
    x = demo_corpus.counts.toarray()
    teacher = Teacher((np.log1p(x) * 2 + np.random.default_rng(0).normal(0, 0.5, x.shape)).astype(np.float32))
    members = [(_cfg(1), DistillConfig(lam=0.5)), (_cfg(1), DistillConfig()), (_cfg(2), DistillConfig(lam=1.0)),
               (_cfg(2), DistillConfig(lam=0.3, temperature=2.0))]
    grid = fit_students(demo_corpus, members, teacher)
    for (cfg, distill), run in zip(members, grid):
        assert run.config["student"]["student"] == "prodlda" and run.state.keys() >= {"hidden_w", "eta_bn.shift"}
        _assert_same_run(run, fit_student(demo_corpus, cfg, distill, teacher if distill.active else None))
    assert not np.allclose(grid[0].beta, grid[1].beta) and not np.allclose(grid[1].beta, grid[2].beta)
    # a Scholar member with the same seed is another model, in its own stack
    scholar = fit_students(demo_corpus, [(StudentConfig(**{**TINY.to_dict(), "seed": 1}), DistillConfig()),
                                         members[1]])
    assert scholar[0].key != grid[1].key and "hidden_w" not in scholar[0].state
    _assert_same_run(scholar[1], grid[1])


def test_prodlda_run_is_consistent(demo_corpus):
    """Topics are the top words of Run.beta, θ rows sum to 1, transform rebuilds ProdLDA from the saved state."""
    run = fit_student(demo_corpus, _cfg(3))
    top = np.argsort(-run.beta, axis=1)[:, :TINY.npmi_top_n]
    assert run.topics == [[demo_corpus.vocab[i] for i in row] for row in top]
    np.testing.assert_allclose(run.theta.sum(axis=1), 1, rtol=1e-5)
    assert np.isfinite(run.metrics["test_perplexity"]) and run.metrics["test_perplexity"] > 1
    assert all(h["p_bn"] == 0 for h in run.history) and not run.background.any()
    np.testing.assert_allclose(run.beta.sum(axis=0), 0, atol=1e-4)
    rows = np.arange(10)
    np.testing.assert_allclose(transform(run, demo_corpus.counts[rows]), run.theta[rows], atol=1e-5)
