"""The teacher's model and the pieces that train and encode with it: the bag-of-words head, the count-weighted
cross-entropy and perplexities, the training loop with its dev-perplexity checkpoint and early stopping, the
cross-fitting folds, and frozen encoding with its on-disk embedding cache. :mod:`bat_core.teachers.build` puts them
together into the modes (frozen / top-n / full, knn head) and the export."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..base.distributed import DistEnv
from ..base.errors import BatError
from ..base.io import atomic_write_bytes
from ..base.progress import Progress, ShouldStop, check_stop, report
from ..config import TeacherConfig
from ..data.corpus import Corpus
from .encoder import (
    Chunks,
    DocEncoder,
    combine_chunks,
)

MLP_HIDDEN = 1024
MLP_DROPOUT = 0.5
EMBEDDING_FORMAT = 1


class BowHead(nn.Module):
    """Embedding → logits over the topic-model vocabulary; starts as the unigram model (bias = log frequencies)."""

    def __init__(self, hidden: int, log_unigram: np.ndarray, kind: str = "linear") -> None:
        super().__init__()
        vocab = len(log_unigram)
        if kind == "mlp":
            self.net: nn.Module = nn.Sequential(nn.Linear(hidden, MLP_HIDDEN), nn.ReLU(), nn.Dropout(MLP_DROPOUT),
                                                nn.Linear(MLP_HIDDEN, vocab))
            out = self.net[-1]
        else:
            self.net = out = nn.Linear(hidden, vocab)
        with torch.no_grad():
            out.weight.zero_()
            out.bias.copy_(torch.as_tensor(log_unigram, dtype=torch.float32))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class Teacher(nn.Module):
    """z_d = head(encode(text_d)): what ``top-n`` and ``full`` fine-tune end to end."""

    def __init__(self, encoder: DocEncoder, head: BowHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, chunks: Chunks, docs: np.ndarray) -> torch.Tensor:
        return self.head(self.encoder(chunks, docs))


# ============================================================================================================ maths
def doc_nll(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """L_d = − Σ_v x_dv log softmax(z_d)_v, one value per document (in fp32 whatever the autocast)."""
    return -(counts * torch.log_softmax(logits.float(), dim=-1)).sum(dim=-1)


def log_unigram(train_counts: sp.spmatrix) -> np.ndarray:
    """Background unigram model from train counts, add-one smoothed: log (n_v + 1) / (Σ n + V)."""
    n = np.asarray(train_counts.sum(axis=0), dtype=np.float64).ravel() + 1.0
    return np.log(n / n.sum())


def unigram_perplexity(counts: sp.spmatrix, log_p: np.ndarray) -> float:
    counts = sp.csr_matrix(counts)
    total = counts.sum()
    return float(math.exp(-(counts @ log_p).sum() / total)) if total > 0 else float("nan")


def _dense_counts(counts: sp.csr_matrix, docs: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(counts[docs].toarray().astype(np.float32)).to(device)


# ======================================================================================================= training
@dataclass
class _Job:
    """What every training/export step needs, threaded through the helpers below."""

    cfg: TeacherConfig
    counts: sp.csr_matrix
    device: torch.device
    env: DistEnv
    progress: Progress | None
    should_stop: ShouldStop | None
    history: list[dict]


Forward = Callable[[np.ndarray], torch.Tensor]  # document rows → logits (len × V)


def _micro_batches(docs: np.ndarray, sizes: np.ndarray | None, budget: int) -> Iterator[np.ndarray]:
    """Split a doc list so each piece has at most ``budget`` chunks (frozen mode: pieces of 512 documents)."""
    if sizes is None:
        for i in range(0, len(docs), 512):
            yield docs[i: i + 512]
        return
    start, used = 0, 0
    for i, d in enumerate(docs):
        if i > start and used + sizes[d] > budget:
            yield docs[start:i]
            start, used = i, 0
        used += sizes[d]
    if start < len(docs):
        yield docs[start:]


def _evaluate(job: _Job, forward: Forward, docs: np.ndarray, sizes: np.ndarray | None) -> float:
    """Dev perplexity, each rank scoring its shard."""
    nll = tokens = 0.0
    with torch.no_grad():
        for micro in _micro_batches(job.env.shard(docs), sizes, job.cfg.encode_batch_size):
            x = _dense_counts(job.counts, micro, job.device)
            nll += float(doc_nll(forward(micro), x).sum())
            tokens += float(x.sum())
    nll, tokens = job.env.sum_floats(nll, tokens)
    return math.exp(nll / tokens) if tokens > 0 else float("nan")


def _train(job: _Job, model: nn.Module, forward: Forward, groups: list[dict], train: np.ndarray, dev: np.ndarray,
           epochs: int, sizes: np.ndarray | None, fold: int, stage: str) -> dict:
    """AdamW + linear decay + clipping; keep the trainable weights of the best dev-perplexity epoch (0 = start)."""
    cfg, env = job.cfg, job.env
    params = [p for g in groups for p in g["params"]]
    names = {id(p): n for n, p in model.named_parameters()}
    batch = cfg.batch_size if sizes is not None else cfg.head_batch_size
    steps = max(1, math.ceil(len(train) / batch)) * max(epochs, 1)
    opt = torch.optim.AdamW(groups, eps=1e-8, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / steps))
    rng = np.random.default_rng([cfg.seed, fold])

    def snapshot() -> dict[str, torch.Tensor]:
        return {names[id(p)]: p.detach().clone() for p in params}

    model.eval()
    best_ppl, best_epoch, best = _evaluate(job, forward, dev, sizes), 0, snapshot()
    job.history.append({"fold": fold, "epoch": 0, "loss": None, "dev_perplexity": best_ppl})
    report(job.progress, stage, 0, epochs, "start = unigram model", dev_perplexity=best_ppl)
    stale = 0
    for epoch in range(1, epochs + 1):
        model.train()
        perm = rng.permutation(train)
        loss_sum = 0.0
        for b in range(0, len(perm), batch):
            check_stop(job.should_stop)
            global_batch = perm[b: b + batch]
            opt.zero_grad(set_to_none=True)
            for micro in _micro_batches(env.shard(global_batch), sizes, cfg.encode_batch_size):
                nll = doc_nll(forward(micro), _dense_counts(job.counts, micro, job.device)).sum()
                (nll / len(global_batch)).backward()  # Σ over the global batch / its size: same math on any world
                loss_sum += float(nll.detach())
            env.all_reduce_grads(params)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
        model.eval()
        dev_ppl = _evaluate(job, forward, dev, sizes)
        (loss_sum,) = env.sum_floats(loss_sum)
        job.history.append({"fold": fold, "epoch": epoch, "loss": loss_sum / len(train), "dev_perplexity": dev_ppl})
        if dev_ppl < best_ppl - 1e-9:
            best_ppl, best_epoch, best, stale = dev_ppl, epoch, snapshot(), 0
        else:
            stale += 1
        report(job.progress, stage, epoch, epochs, f"epoch {epoch}", loss=loss_sum / len(train),
               dev_perplexity=dev_ppl, best=best_ppl)
        if stale >= cfg.patience:
            break
    model.load_state_dict(best, strict=False)
    model.eval()
    return {"fold": fold, "best_epoch": best_epoch, "dev_perplexity": best_ppl, "state": best}


def _folds(train: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint, shuffled parts of the train split (k = 0: one 'fold' that is held out nowhere)."""
    if k < 2:
        return [np.zeros(0, dtype=np.int64)]
    if len(train) < 2 * k:
        raise BatError(f"cross-fitting with {k} folds needs at least {2 * k} training documents, not {len(train)}")
    perm = np.random.default_rng([seed, 7919]).permutation(train)
    return [np.sort(p) for p in np.array_split(perm, k)]


def fold_assignment(n_docs: int, held_out: list[np.ndarray]) -> np.ndarray:
    """fold[d] = the fold whose teacher did not see train document d; −1 = every teacher (dev/test, or no folds)."""
    fold = np.full(n_docs, -1, dtype=np.int8)
    for f, docs in enumerate(held_out):
        fold[docs] = f
    return fold


# ========================================================================================================= encoding
def _encode_frozen(job: _Job, encoder: DocEncoder, chunks: Chunks, n_docs: int) -> torch.Tensor:
    """Every document's embedding with a frozen encoder (N × H on CPU): length-sorted chunk batches, sharded."""
    order = np.argsort([len(c) for c in chunks.ids], kind="stable")
    batches = [order[i: i + job.cfg.encode_batch_size] for i in range(0, len(order), job.cfg.encode_batch_size)]
    mine = job.env.shard(np.arange(len(batches)))
    hidden = encoder.hidden_size
    sel, out = [], []
    with torch.inference_mode():
        for j, b in enumerate(mine):
            check_stop(job.should_stop)
            out.append(encoder.embed_chunks([chunks.ids[c] for c in batches[b]]).cpu())
            sel.append(batches[b])
            report(job.progress, "teacher: encode", min((j + 1) * job.env.world, len(batches)), len(batches),
                   f"{len(batches[b])} windows of ≤ {max(len(chunks.ids[c]) for c in batches[b])} word-pieces")
    sel_a = np.concatenate(sel) if sel else np.zeros(0, dtype=np.int64)
    h = torch.cat(out).numpy() if out else np.zeros((0, hidden), dtype=np.float32)
    sel_a, h = job.env.gather_rows(sel_a), job.env.gather_rows(h)
    chunk_h = np.zeros((len(chunks.ids), hidden), dtype=np.float32)
    chunk_h[sel_a] = h
    return combine_chunks(torch.from_numpy(chunk_h), chunks.doc, chunks.weight, np.arange(n_docs))


def _embedding_cache_path(cache_dir: Path | None, corpus: Corpus, fingerprint: dict) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / "embeddings" / f"{corpus.hash}-{key}.safetensors"


def _load_embeddings(path: Path | None, n_docs: int) -> tuple[torch.Tensor, dict] | None:
    """Cached frozen-encoder embeddings and what is known about the encoder that made them, or None."""
    if path is None or not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            h = f.get_tensor("embeddings")
            info = json.loads((f.metadata() or {})["info"])
    except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt, never trusted
        return None
    return (h, info) if h.shape[0] == n_docs else None


def _save_embeddings(path: Path | None, h: torch.Tensor, fingerprint: dict, info: dict) -> None:
    if path is None:
        return
    from safetensors.torch import save

    atomic_write_bytes(path, save({"embeddings": h.contiguous()},
                                  metadata={"fingerprint": json.dumps(fingerprint), "info": json.dumps(info)}))


