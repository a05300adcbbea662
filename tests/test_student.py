"""Scholar and the BAT loss: shapes, the loss decreasing, determinism, λ = 0 = baseline, T² and clipping."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bat_core.base.errors import BatError
from bat_core.config import DistillConfig, StudentConfig
from bat_core.students.layers import SparseRows, StackedBatchNorm, _BatchNormTrain
from bat_core.students.loss import bat_loss, bow_nll, clip_logits, cross_entropy, teacher_target
from bat_core.students.scholar import Scholar, background_log_frequencies, reconstruction
from bat_core.training.trainer import fit_student


def _batch(seed=0, n=16, V=30):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.rand(n, V, generator=g) * 2, generator=g)  # no global RNG: the same batch every run


def test_background_is_log_frequencies():
    b = background_log_frequencies(np.array([3.0, 0.0, 1.0]))
    assert np.allclose(np.exp(b), np.array([4, 1, 2]) / 7)


def _rows(x: torch.Tensor, n_members: int = 1) -> SparseRows:
    return SparseRows.build([sp.csr_matrix(x.numpy())], [0] * n_members, x.shape[1], torch.device("cpu"))


def test_scholar_loss_finite_and_decreasing():
    x = _batch()
    gen = torch.Generator().manual_seed(0)
    model = Scholar(30, 5, background_log_frequencies(x.sum(0).numpy()), emb_dim=16, generators=[gen])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    rows = _rows(x)
    assert torch.equal(rows.dense()[0], x)
    losses = []
    for _ in range(30):
        noise = model.draw([gen], 16, torch.device("cpu"), torch.tensor([0]))
        theta, eta, eta_bn, mu, logvar = model(rows, noise=noise)
        assert theta.shape == (1, 16, 5) and torch.allclose(theta.sum(-1), torch.ones(1, 16))
        loss = bat_loss(rows, eta, eta_bn, 1.0, model.kl(mu, logvar), torch.zeros(1))[0]
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0
    assert {n for n, _ in model.named_parameters()} >= {"mean_bn.shift", "eta_bn.shift"}  # BN: a shift, no scale


def test_sparse_bow_loss_equals_dense_and_gradients_match():
    """The gathered CE over nonzero counts (and the hand-written embedding gradient) equal the dense computation."""
    x = _batch(seed=1)
    bg = background_log_frequencies(x.sum(0).numpy())
    model = Scholar(30, 4, bg, emb_dim=8, n_members=2, generators=[torch.Generator().manual_seed(s) for s in (1, 2)])
    rows = _rows(x, n_members=2)
    _, eta, eta_bn, mu, logvar = model(rows)
    recon = reconstruction(eta, eta_bn, 0.3)
    sparse = bow_nll(rows, recon)
    dense = cross_entropy(x.expand(2, -1, -1), recon)
    assert torch.allclose(sparse, dense, rtol=1e-5)
    sparse.sum().backward()
    g_sparse = model.embeddings.grad.clone()
    # the same gradient by plain autograd through a dense x·Eᵀ
    emb = model.embeddings.detach().clone().requires_grad_(True)
    model.zero_grad()
    pi = torch.nn.functional.softplus(x.expand(2, -1, -1) @ emb)
    h_mu, h_lv = model.encode_pre_bn(pi)
    theta = torch.softmax(model.mean_bn(h_mu), -1)
    eta2 = torch.baddbmm(model.background.expand(2, 1, -1), theta, model.beta)
    cross_entropy(x.expand(2, -1, -1), reconstruction(eta2, model.eta_bn(eta2), 0.3)).sum().backward()
    assert torch.allclose(g_sparse, emb.grad, rtol=1e-4, atol=1e-5)  # float32: BN from θ vs of η
    # the fallback for devices without sparse CSR products gives the same gradient
    rows.transposed = None
    model.zero_grad()
    _, eta, eta_bn, *_ = model(rows)
    bow_nll(rows, reconstruction(eta, eta_bn, 0.3)).sum().backward()
    assert torch.allclose(model.embeddings.grad, g_sparse, atol=1e-5)


def test_batchnorm_backward_is_the_gradient():
    h = torch.randn(2, 7, 5, dtype=torch.float64, requires_grad=True)
    shift = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _BatchNormTrain.apply(a, b, 1e-3)[0], (h, shift))
    y, mean, var = _BatchNormTrain.apply(h, shift, 1e-3)
    ref = (h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True) + 1e-3) + shift[:, None]
    assert torch.allclose(y, ref) and torch.allclose(var, h.var(1, unbiased=False))


def test_batchnorm_of_a_product_is_batchnorm_of_the_product():
    """``of_product`` finds BN(θβ + b) from θ's batch statistics: the same values, gradients and running statistics
    as normalising the product itself, in training and in eval."""
    g = torch.Generator().manual_seed(0)
    theta = torch.softmax(torch.randn(3, 16, 4, generator=g, dtype=torch.float64), -1).requires_grad_()
    beta = torch.randn(3, 4, 50, generator=g, dtype=torch.float64).requires_grad_()
    bias = torch.randn(50, generator=g, dtype=torch.float64)
    plain, fused = StackedBatchNorm(3, 50).double(), StackedBatchNorm(3, 50).double()
    with torch.no_grad():
        plain.shift.normal_(generator=g)
        fused.shift.copy_(plain.shift)
    y_plain, y_fused = plain(torch.baddbmm(bias.expand(3, 1, -1), theta, beta)), fused.of_product(theta, beta, bias)
    assert torch.allclose(y_plain, y_fused, atol=1e-12)
    for a, b in zip(plain.state_dict().values(), fused.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-12)
    w = torch.randn(y_plain.shape, generator=g, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad((y_plain * w).sum(), [theta, beta, plain.shift]),
                    torch.autograd.grad((y_fused * w).sum(), [theta, beta, fused.shift]), strict=True):
        assert torch.allclose(a, b, atol=1e-11)
    plain.eval(), fused.eval()
    assert torch.allclose(plain(torch.bmm(theta, beta)), fused.of_product(theta, beta), atol=1e-12)


@pytest.mark.parametrize("p_bn", [0.0, 0.4])
@pytest.mark.parametrize("with_target", ["none", "sparse", "dense"])
def test_sparse_loss_path_is_the_dense_formula(p_bn, with_target):
    """At T = 1 ``bat_loss`` takes its written-out gradient (``_MixtureNll``), with a sparse, a dense or no target:
    its value and its gradients are those of the plain formula, (1 − λ)·CE(x, x̂) + λ·CE(x̃, x̂) + KL, by autograd."""
    g = torch.Generator().manual_seed(1)
    M, B, V = 3, 16, 50
    blk = sp.random(B, V, density=0.1, format="csr", random_state=1)
    blk.data = np.round(blk.data * 3) + 1
    x = SparseRows.build([blk], [0] * M, V, torch.device("cpu"))
    x.counts = x.counts.double()
    dense_x = torch.zeros(M * B * V, dtype=torch.float64).index_put_((x.flat,), x.counts, accumulate=True)
    eta, eta_bn = (torch.randn(M, B, V, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2))
    target = torch.rand(2, B, V, generator=g, dtype=torch.float64) * (torch.rand(2, B, V, generator=g) < 0.05)
    lam, kl = torch.tensor([0.0, 0.3, 0.8], dtype=torch.float64), torch.rand(M, B, generator=g, dtype=torch.float64)
    given = {"none": None, "sparse": SparseRows.from_dense([target[0], target[1]], [0, 1]), "dense": target}
    got = bat_loss(x, eta, eta_bn, p_bn, kl, lam, 1.0, given[with_target])
    recon = reconstruction(eta, eta_bn, p_bn)
    nl = cross_entropy(dense_x.view(M, B, V), recon)
    if with_target != "none":
        nl = torch.cat([nl[:1], (1 - lam[1:, None]) * nl[1:] + lam[1:, None] * cross_entropy(target, recon[1:])])
    want = (nl + kl).mean(dim=1)
    assert torch.allclose(got, want, atol=1e-12)
    inputs = [eta, eta_bn] if p_bn > 0 else [eta]
    for a, b in zip(torch.autograd.grad(got.sum(), inputs), torch.autograd.grad(want.sum(), inputs), strict=True):
        assert torch.allclose(a, b, atol=1e-12)


def test_kl_is_zero_at_the_prior():
    model = Scholar(10, 4, np.zeros(10, dtype=np.float32), alpha=0.5)
    mu = model.prior_mean.expand(1, 3, 4)
    assert torch.allclose(model.kl(mu, model.prior_var.log().expand(1, 3, 4)), torch.zeros(1, 3), atol=1e-5)


def test_bat_loss_matches_hand_computation():
    x = torch.tensor([[2.0, 1.0, 0.0]])
    eta = torch.tensor([[0.5, -0.2, 0.1]])
    z = torch.tensor([[1.0, 0.0, -1.0]])
    lam, T = 0.3, 2.0
    target = teacher_target(z, x, T)
    p_t = np.exp(np.array([1.0, 0.0, -1.0]) / T)
    p_t /= p_t.sum()
    assert np.allclose(target.numpy(), 3 * p_t)  # N_d · softmax(z / T)
    q_T = np.exp(np.array([0.5, -0.2, 0.1]) / T)
    q_T /= q_T.sum()
    q = np.exp([0.5, -0.2, 0.1])
    q /= q.sum()
    kd = -(3 * p_t * np.log(q_T + 1e-10)).sum()
    ce = -(np.array([2, 1, 0]) * np.log(q + 1e-10)).sum()
    no_kl = torch.zeros(1, 1)
    got = bat_loss(_rows(x), eta[None], None, 0.0, no_kl, torch.tensor([lam]), T, target[None]).item()
    assert math.isclose(got, lam * T**2 * kd + (1 - lam) * ce, rel_tol=1e-5)
    assert math.isclose(bat_loss(_rows(x), eta[None], None, 0.0, no_kl, torch.tensor([0.0])).item(), ce, rel_tol=1e-6)


def test_min_count_zeroes_small_pseudo_counts():
    x = torch.tensor([[5.0, 0.0, 0.0, 0.0]])
    z = torch.tensor([[5.0, 0.0, -5.0, -9.0]])
    t = teacher_target(z, x, 1.0, min_count=0.01)
    assert t[0, 3] == 0 and t[0, 0] > 4


def test_clipping_keeps_c_times_unique_types():
    torch.manual_seed(0)
    V = 1000
    z = torch.randn(4, V)
    x = torch.zeros(4, V)
    for d, u in enumerate([5, 10, 20, 200]):
        x[d, torch.randperm(V)[:u]] = 1
    clipped = clip_logits(z, x, c=3.0)
    kept = torch.isfinite(clipped).sum(1).tolist()
    for k, u in zip(kept, [5, 10, 20, 200]):
        expected = min(V, 3 * u)
        assert abs(k - expected) <= 1, (k, expected)
    # the kept logits are the largest ones
    assert torch.isfinite(clipped[0, z[0].argmax()])
    assert torch.equal(clip_logits(z, x, None), z)


def test_clipping_keeps_the_first_n_of_a_stable_descending_sort():
    """The kept entries are those ranked < n_keep by a stable descending sort (ties by word index), on a stack
    (M, B, V) with many ties (values rounded to a few levels, as the logits store's shared tail logit makes them)."""
    torch.manual_seed(1)
    V = 300
    z = (torch.randn(3, 8, V) * 2).round() / 2  # ~15 distinct values: ties at every threshold
    x = torch.zeros(3, 8, V)
    for m in range(3):
        for d in range(8):
            x[m, d, torch.randperm(V)[: [1, 3, 7, 20, 60, 100, 150, 299][d]]] = 1
    c = 2.0
    k = c * (x > 0).sum(dim=-1).float()
    n_keep = V - ((1 - k / V).clamp(min=0) * (V - 1)).ceil().long().clamp(0, V - 1)
    order = torch.sort(z, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(V).expand_as(order))
    want = torch.where((k < V).unsqueeze(-1), z.masked_fill(rank >= n_keep.unsqueeze(-1), float("-inf")), z)
    assert torch.equal(clip_logits(z, x, c), want)


@dataclass
class FakeTeacher:
    """Logits that favour each document's own words plus a shared 'teacher topic'."""

    logits: np.ndarray
    key: str = "fake"
    meta: dict = None

    def dense(self, rows):
        return self.logits[rows]


@pytest.fixture(scope="module")
def fake_teacher(demo_corpus):
    x = demo_corpus.counts.toarray()
    rng = np.random.default_rng(0)
    return FakeTeacher(np.log1p(x) * 2 + rng.normal(0, 0.5, x.shape).astype(np.float32), meta={"mode": "fake"})


FAST = StudentConfig(n_topics=8, epochs=4, seed=3)


def test_fit_student_is_deterministic_and_lambda0_is_baseline(demo_corpus, fake_teacher):
    a = fit_student(demo_corpus, FAST)
    b = fit_student(demo_corpus, FAST)
    assert np.array_equal(a.beta, b.beta) and a.metrics["test_npmi"] == b.metrics["test_npmi"]
    # λ = 0 with a teacher available is exactly the baseline, same seed
    c = fit_student(demo_corpus, FAST, DistillConfig(lam=0.0), teacher=fake_teacher)
    assert np.array_equal(a.beta, c.beta) and a.key == c.key
    d = fit_student(demo_corpus, FAST, DistillConfig(lam=0.5), teacher=fake_teacher)
    assert not np.array_equal(a.beta, d.beta) and d.config["teacher_key"] == "fake" and d.key != a.key
    assert a.theta.shape == (demo_corpus.n_docs, 8) and np.allclose(a.theta.sum(1), 1, atol=1e-4)
    assert len(a.history) == 4 and len(a.topics) == 8 and len(a.topics[0]) == 10
    for m in ("dev_npmi", "test_npmi", "tu", "test_perplexity"):
        assert np.isfinite(a.metrics[m])


@pytest.mark.parametrize("mode", ["raw", "doc_layer"])
def test_encode_logits_options_train(demo_corpus, fake_teacher, mode):
    r = fit_student(demo_corpus, StudentConfig(n_topics=5, epochs=2), DistillConfig(lam=0.5, encode_logits=mode),
                    teacher=fake_teacher)
    assert np.isfinite(r.metrics["test_npmi"])


def test_student_learns_real_topics(demo_corpus):
    r = fit_student(demo_corpus, StudentConfig(n_topics=20, epochs=150, seed=1))
    assert r.metrics["test_npmi"] > 0.12  # random top-10 lists score about 0 on this corpus
    assert r.metrics["tu"] > 0.6


def test_too_few_documents_for_topics(demo_corpus):
    with pytest.raises(BatError, match="too few"):
        fit_student(demo_corpus, StudentConfig(n_topics=500, epochs=1))
    with pytest.raises(BatError, match="needs a teacher"):
        fit_student(demo_corpus, FAST, DistillConfig(lam=0.5))


def test_random_topics_score_near_zero(demo_corpus):
    """Guards the NPMI test above from passing vacuously: random word lists must score far below learned ones."""
    from bat_core.evaluation.metrics import npmi

    rng = np.random.default_rng(0)
    top = np.stack([rng.choice(demo_corpus.vocab_size, 10, replace=False) for _ in range(20)])
    assert npmi(top, demo_corpus.split_counts("test")) < 0.06


@pytest.mark.parametrize(("threshold", "split"), [(0.0, "dev"), (1.01, "train")])
def test_checkpoint_is_the_best_epoch_of_the_split_that_can_score_it(demo_corpus, monkeypatch, threshold, split):
    """Each run keeps the epoch with the best dev NPMI when the dev split saw at least MIN_PAIRS_SEEN of its top-word
    pairs together, else the epoch with the best NPMI on the training split (both are in the history)."""
    from bat_core.training import trainer

    monkeypatch.setattr(trainer, "MIN_PAIRS_SEEN", threshold)
    run = trainer.fit_student(demo_corpus, StudentConfig(n_topics=10, epochs=12, seed=1))
    scores = [h[f"{split}_npmi"] for h in run.history]
    assert run.metrics["checkpoint_on"] == split
    assert run.metrics["best_epoch"] == int(np.argmax(scores)) + 1


def test_short_texts_choose_the_checkpoint_on_the_training_split(demo_corpus):
    """Eight words per document: the dev split sees almost no top-word pair together, so it cannot choose the epoch."""
    from bat_core.data.corpus import build_corpus
    from bat_core.training.trainer import fit_student

    short = build_corpus([" ".join(t.split()[:8]) for t in demo_corpus.texts], demo_corpus.config, name="short")
    run = fit_student(short, StudentConfig(n_topics=10, epochs=6, seed=1))
    assert run.metrics["checkpoint_on"] == "train"
    assert run.metrics["best_epoch"] == int(np.argmax([h["train_npmi"] for h in run.history])) + 1
