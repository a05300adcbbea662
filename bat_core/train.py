"""Training the student: one code path for the baseline (λ = 0) and BAT (λ > 0).

Minibatches are drawn with replacement (floor(N/B) per epoch, as Scholar does); p_bn anneals from 1 to 0; after every
epoch the topics are scored by NPMI on the dev split and the best epoch's weights are kept (bat-method.md section 5).
"""

from __future__ import annotations

import copy
import time
from contextlib import nullcontext
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from .config import DistillConfig, StudentConfig
from .corpus import Corpus
from .device import cpu_threads, describe, pick_device
from .distill import clip_logits, reconstruction_loss, teacher_target
from .errors import BatError
from .metrics import npmi_per_topic, perplexity, top_words, topic_uniqueness
from .progress import Progress, ShouldStop, check_stop, report
from .runs import Run, run_key
from .student import Scholar, background_log_frequencies, reconstruction


class LogitsSource(Protocol):
    key: str
    meta: dict

    def dense(self, rows: np.ndarray) -> np.ndarray: ...


def _dense(x: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(x[rows].toarray().astype(np.float32, copy=False)).to(device)


def check_trainable(corpus: Corpus, cfg: StudentConfig) -> None:
    n_train = len(corpus.splits["train"])
    if n_train < cfg.n_topics:
        raise BatError(f"{n_train} training documents are too few for {cfg.n_topics} topics; "
                       f"use at most {max(2, n_train // 2)} topics or give more documents")
    if corpus.vocab_size < cfg.npmi_top_n * 2:
        raise BatError(f"the vocabulary has only {corpus.vocab_size} words; give more text or lower min_df")


def fit_student(corpus: Corpus, cfg: StudentConfig, distill: DistillConfig | None = None,
                teacher: LogitsSource | None = None, progress: Progress | None = None,
                should_stop: ShouldStop | None = None) -> Run:
    """Train Scholar on ``corpus`` (optionally distilling from ``teacher``) and return the best-dev-NPMI run."""
    distill = distill or DistillConfig()
    device = pick_device(cfg.device)
    # Scholar's matrices are small: on a CPU, one thread per 2,500 vocabulary words, at most what torch has
    threads = max(1, min(torch.get_num_threads(), corpus.vocab_size // 2500))
    with cpu_threads(threads) if device.type == "cpu" else nullcontext():
        return _fit(corpus, cfg, distill, teacher, device, progress, should_stop)


def _fit(corpus: Corpus, cfg: StudentConfig, distill: DistillConfig, teacher: LogitsSource | None,
         device: torch.device, progress: Progress | None, should_stop: ShouldStop | None) -> Run:
    check_trainable(corpus, cfg)
    if distill.active and teacher is None:
        raise BatError(f"λ = {distill.lam} (or encoding teacher logits) needs a teacher; train one first")
    uses_teacher = distill.active
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    train_idx = corpus.splits["train"]
    X = corpus.counts
    X_train = X[train_idx]
    dev_counts = corpus.split_counts("dev")
    bg = background_log_frequencies(np.asarray(X_train.sum(axis=0)).ravel())
    model = Scholar(corpus.vocab_size, cfg.n_topics, bg, cfg.emb_dim, cfg.alpha, cfg.dropout,
                    distill.encode_logits).to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, betas=(cfg.beta1, 0.999))

    def logits_for(rows: np.ndarray) -> torch.Tensor:
        assert teacher is not None
        return torch.from_numpy(np.asarray(teacher.dense(rows), dtype=np.float32)).to(device)

    n = len(train_idx)
    # Small corpora get smaller batches: with 250 documents, batch 200 would mean one step per epoch.
    batch = min(cfg.batch_size, max(32, n // 4), n)
    steps = max(1, n // batch)
    p_bn = 1.0
    best: dict[str, Any] = {"npmi": -np.inf, "epoch": 0, "state": None}
    history: list[dict[str, Any]] = []
    stale = 0
    stage = f"student λ={distill.lam:g} seed={cfg.seed}"
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total = 0.0
        for _ in range(steps):
            check_stop(should_stop)
            local = rng.integers(n, size=batch)
            rows = train_idx[local]
            x = _dense(X_train, local, device)
            # clipped once, as the original does at load time: the encoder input and the target see the same logits
            z_t = clip_logits(logits_for(rows), x, distill.clip) if uses_teacher else None
            _, eta, eta_bn, mu, logvar = model(x, z_t if distill.encode_logits != "off" else None)
            target = None
            if distill.lam > 0:
                assert z_t is not None
                target = teacher_target(z_t, x, distill.temperature, None, distill.min_count)
            nl = reconstruction_loss(x, eta, eta_bn, p_bn, distill.lam, distill.temperature, target)
            loss = (nl + model.kl(mu, logvar)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        beta = model.topic_word().detach().cpu().numpy()
        dev_npmi = float(npmi_per_topic(top_words(beta, cfg.npmi_top_n), dev_counts).mean())
        history.append({"epoch": epoch, "loss": total / steps, "dev_npmi": dev_npmi, "p_bn": p_bn})
        if dev_npmi > best["npmi"]:
            best = {"npmi": dev_npmi, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            stale = 0
        else:
            stale += 1
        report(progress, stage, epoch, cfg.epochs, loss=total / steps, dev_npmi=dev_npmi, best_dev_npmi=best["npmi"])
        p_bn = max(0.0, p_bn - 1.0 / (cfg.bn_anneal * cfg.epochs))
        if cfg.patience is not None and stale >= cfg.patience:
            break

    model.load_state_dict(best["state"])
    theta, recon_test = _infer(model, corpus, teacher if distill.encode_logits != "off" else None, device)
    beta = model.topic_word().detach().cpu().numpy().astype(np.float32)
    top = top_words(beta, cfg.npmi_top_n)
    test_counts = corpus.split_counts("test")
    test_pt = npmi_per_topic(top, test_counts)
    dev_pt = npmi_per_topic(top, dev_counts)
    metrics = {
        "dev_npmi": float(dev_pt.mean()), "test_npmi": float(test_pt.mean()),
        "test_npmi_per_topic": [float(v) for v in test_pt], "dev_npmi_per_topic": [float(v) for v in dev_pt],
        "tu": topic_uniqueness(top), "test_perplexity": perplexity(test_counts, recon_test),
        "best_epoch": best["epoch"], "epochs_run": len(history), "wall_time_s": time.time() - t0,
        "device": describe(device),
    }
    config = {"student": cfg.to_dict(), "distill": distill.canonical().to_dict(), "corpus_hash": corpus.hash,
              "corpus_name": corpus.name, "teacher_key": teacher.key if uses_teacher and teacher else None,
              "teacher": dict(teacher.meta) if uses_teacher and teacher else None}
    key = run_key(corpus.hash, config["teacher_key"], config["student"], config["distill"])
    topics = [[corpus.vocab[i] for i in row] for row in top]
    return Run(key=key, config=config, beta=beta, background=bg, theta=theta, metrics=metrics, history=history,
               topics=topics)


@torch.no_grad()
def _infer(model: Scholar, corpus: Corpus, teacher: LogitsSource | None, device: torch.device,
           batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """θ = softmax(μ) for every document (no sampling, no dropout), and the test split's reconstructions."""
    model.eval()
    thetas = []
    for s in range(0, corpus.n_docs, batch):
        rows = np.arange(s, min(s + batch, corpus.n_docs))
        x = _dense(corpus.counts, rows, device)
        z = torch.from_numpy(np.asarray(teacher.dense(rows), dtype=np.float32)).to(device) if teacher else None
        theta, *_ = model(x, z, var_scale=0.0)
        thetas.append(theta.cpu().numpy())
    theta = np.concatenate(thetas).astype(np.float32)
    test = corpus.splits["test"]
    eta = torch.from_numpy(theta[test]).to(device) @ model.beta.weight.t() + model.background
    recon = reconstruction(eta, eta, 0.0).cpu().numpy()
    return theta, recon
