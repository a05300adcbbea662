"""Training the student: one code path for the baseline (λ = 0) and BAT (λ > 0), for one run or a whole grid.

Minibatches are drawn with replacement (floor(N/B) per epoch, as Scholar does); p_bn anneals from 1 to 0; after every
epoch the topics are scored by NPMI on the dev split and the best epoch's weights are kept (bat-method.md section 5),
unless the dev split is too sparse to score the run's topics: then the training split's NPMI chooses the epoch
(:class:`_Checkpoints`).

``fit_students`` trains several members (λ and/or seed differ; corpus, K, V and the other student settings are the
same) as one stacked model (the students are stacked; scheduling.py forms the stacks), so an 11 λ × 3 seed grid is
one job instead of 33. Members with the same seed share their minibatch indices, their teacher-logit fetch and their
random draws, which each member's seed determines alone; so a member trained in a grid gives what it gives when
trained by itself (up to float rounding).
``fit_student`` is ``fit_students`` with one member: there is no second training loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from ..base.device import describe
from ..base.errors import BatError
from ..base.progress import Progress, ShouldStop, check_stop, report
from ..config import DistillConfig, StudentConfig
from ..data.corpus import Corpus
from ..evaluation.coherence import MIN_PAIRS_SEEN
from ..evaluation.metrics import NpmiScorer, npmi_per_topic, perplexity, top_words, topic_uniqueness
from ..runs.store import Run, run_key
from ..students.inference import encode_theta, member_logits, refresh_bn_statistics
from ..students.layers import SparseRows
from ..students.loss import bat_loss, clip_logits, teacher_target
from ..students.prodlda import student_class
from ..students.scholar import Scholar, background_log_frequencies, reconstruction
from . import scheduling
from .scheduling import Member


class LogitsSource(Protocol):
    key: str
    meta: dict

    def dense(self, rows: np.ndarray) -> np.ndarray: ...


def check_trainable(corpus: Corpus, cfg: StudentConfig) -> None:
    n_train = len(corpus.splits["train"])
    if n_train < cfg.n_topics:
        raise BatError(f"{n_train} training documents are too few for {cfg.n_topics} topics; "
                       f"use at most {max(2, n_train // 2)} topics or give more documents")
    if cfg.n_topics > corpus.vocab_size:  # K = 100 over 40 words trained to topic uniqueness 0.04, without a word
        raise BatError(f"{cfg.n_topics} topics over a vocabulary of {corpus.vocab_size} words cannot give each topic a "
                       f"word of its own; use at most {corpus.vocab_size} topics, or give more text")
    if corpus.vocab_size < cfg.npmi_top_n * 2:
        raise BatError(f"the vocabulary has only {corpus.vocab_size} words, too few to score topics by their top "
                       f"{cfg.npmi_top_n} (npmi_top_n); lower npmi_top_n, give more text or lower min_df")


def fit_student(corpus: Corpus, cfg: StudentConfig, distill: DistillConfig | None = None,
                teacher: LogitsSource | None = None, progress: Progress | None = None,
                should_stop: ShouldStop | None = None) -> Run:
    """Train the student (``cfg.student``: Scholar or ProdLDA) on ``corpus`` (optionally distilling from
    ``teacher``) and return the best-dev-NPMI run."""
    return fit_students(corpus, [(cfg, distill or DistillConfig())], teacher, progress, should_stop)[0]


def fit_students(corpus: Corpus, members: Sequence[Member], teacher: LogitsSource | None = None,
                 progress: Progress | None = None, should_stop: ShouldStop | None = None,
                 on_run: Callable[[int, Run], None] | None = None, first: Sequence[int] = ()) -> list[Run]:
    """Train every (StudentConfig, DistillConfig) member and return one Run per member, in order.

    Members whose student settings agree except for the seed, and that feed the encoder the same way
    (encode_logits), train together as one stacked model; other members form further stacks. On a CPU a large stack
    is split into smaller ones (see CPU_STACK_ELEMENTS and cpu_workers), and the CPU stacks train side by side, one
    thread each. ``on_run(i, run)`` hears about member ``i`` as soon as its stack is done (one call at a time), so a
    caller can save it before the others finish. ``teacher`` may be None only if no member is ``distill.active``.
    ``first``: members to finish as early as possible (their own stack, started first; see ``scheduling.stacks``).
    """
    # The trainer chooses no settings: a γ left unset trains as 0 here (the grid chooses it on dev data first)
    members = [(cfg, _gamma_set(distill or DistillConfig())) for cfg, distill in members]
    for cfg, distill in members:
        check_trainable(corpus, cfg)
        if distill.active and teacher is None:
            raise BatError(f"λ = {distill.lam} (or encoding teacher logits) needs a teacher; train one first")
    workers = scheduling.cpu_workers()
    jobs = scheduling.stacks(members, corpus, workers, first)
    runs: list[Run | None] = [None] * len(members)
    lock = threading.Lock()

    def train(job: tuple[list[int], torch.device]) -> None:
        idx, device = job
        done = _fit_stack(corpus, [members[i] for i in idx], teacher, device, progress, should_stop)
        with lock:
            for i, run in zip(idx, done, strict=True):
                runs[i] = run
                if on_run is not None:
                    on_run(i, run)

    scheduling.run(jobs, train, workers, corpus.vocab_size)
    return [r for r in runs if r is not None]


def _gamma_set(distill: DistillConfig) -> DistillConfig:
    return replace(distill, background_correction=0.0) if distill.background_correction is None else distill


def _adam(params: list[torch.nn.Parameter], cfg: StudentConfig) -> torch.optim.Optimizer:
    """Adam over the stacked weights: one fused kernel per tensor (elementwise, so members stay independent)."""
    try:
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, 0.999), fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, 0.999), foreach=True)


# The most entries a clip table may hold (boolean, about 5 bytes each in scipy's CSR): 160 MB. Short texts need a few
# per document (NYT sentences: 2 × 5 words); long ones with a large c up to the vocabulary per document.
CLIP_TABLE_ENTRIES = 2**25
# A target with at most this share of nonzero entries goes to the loss as sparse rows. The dense product costs about
# seven passes over (M_kd, B, V) (log, product, sum and their backward); the sparse one a gather and a scatter per
# nonzero, some times dearer per entry: below an eighth the sparse one is clearly cheaper, above it the gain is small.
SPARSE_TARGET_SHARE = 0.125


# The most entries a stack keeps as per-document target tables: 128 MB dense (float32), 256 MB as CSR (value and
# index), about twice that while they are joined; each stack training at a time holds its own (two on 2 cores)
TARGET_TABLE_ENTRIES = 2**25
TargetKey = tuple[float | None, float, float, float | None]  # (c, T, min count, γ): what a target depends on


def _target_key(d: DistillConfig) -> TargetKey:
    return d.clip, d.temperature, d.min_count, d.background_correction


@dataclass(frozen=True)
class _TargetTable:
    """One setting's targets for every training document (rows in training order): a CSR matrix for a clipped
    target (a few entries per document), else a dense tensor; ``row_nnz`` counts each row's nonzero entries."""

    csr: sp.csr_matrix | None
    dense: torch.Tensor | None
    row_nnz: np.ndarray

    @classmethod
    def of(cls, parts: list[torch.Tensor | sp.csr_matrix]) -> _TargetTable:
        if parts and isinstance(parts[0], torch.Tensor):
            dense = torch.cat(parts)  # type: ignore[arg-type]
            return cls(None, dense, torch.count_nonzero(dense, dim=1).cpu().numpy())
        csr = sp.vstack(parts, format="csr")
        csr.sort_indices()
        return cls(csr, None, np.diff(csr.indptr))

    def rows_csr(self, where: np.ndarray) -> sp.csr_matrix:
        if self.csr is not None:
            return self.csr[where]
        assert self.dense is not None
        return sp.csr_matrix(self.dense[torch.from_numpy(where)].cpu().numpy())

    def rows_dense(self, where: np.ndarray, device: torch.device) -> torch.Tensor:
        if self.dense is not None:
            return self.dense.index_select(0, torch.from_numpy(where).to(self.dense.device))
        assert self.csr is not None
        return torch.from_numpy(self.csr[where].toarray()).to(device)


class _Teacher:
    """The teacher's part of each step: the λ > 0 members' targets, read from tables made once (below), or, when
    there are none (the encoder reads the logits, or the tables would be too large), each seed's minibatch logits
    fetched once, clipped once per c, turned into targets once per (c, T, min count, γ), then handed to the members
    that use them.

    With ``train_rows`` (the training documents' corpus rows) and their ``train_counts``, the clip reads which entries
    each document keeps from a table made once per c (:meth:`_kept`): the clip depends on the document alone (its
    logits and its distinct words), and finding it anew every step (a top-k over the vocabulary per row) cost 65 %
    more per distilled run on NYT sentences (20 epochs, one run alone: 14.2 s clipped, 8.6 s not). The same entries
    are kept either way (tested).

    The targets themselves depend on the document alone too (its logits, its words and N_d) and on the member's
    (c, T, min count, γ): unless the encoder reads the logits, each target is made once per training document in a
    table (:meth:`_target_tables`, within ``TARGET_TABLE_ENTRIES``), and a step reads its rows. Fetching the logits,
    clipping, softmax and finding the nonzero entries each step had made a one-member distilled run on NYT sentences
    (4,000, 20 epochs) take 2.85 s clipped and 2.76 s not, against 1.97 s and 2.2-2.5 s with the tables. The same
    numbers reach the loss either way on a CPU, bit for bit (tested). On a GPU the softmax of V > 1,024 words may sum
    a row in another order depending on where the row lies in memory, so a target may differ in its last bit, as one
    document's already did between two places in a minibatch."""

    def __init__(self, source: LogitsSource | None, distills: Sequence[DistillConfig], stream: Sequence[int],
                 device: torch.device, background: np.ndarray | None = None, train_rows: np.ndarray | None = None,
                 train_counts: sp.csr_matrix | None = None) -> None:
        self.source, self.distills, self.stream, self.device = source, distills, list(stream), device
        # log unigram frequencies of the training split, for the target's background correction
        self.background = None if background is None else torch.as_tensor(background, dtype=torch.float32,
                                                                            device=device)
        self.kd = [m for m, d in enumerate(distills) if d.lam > 0]
        self.encodes = any(d.encode_logits != "off" for d in distills)
        self.needed = any(d.active for d in distills)
        self.train_rows, self.train_counts = train_rows, train_counts
        self.tables: dict[float, sp.csr_matrix | None] = {}  # c → the entries each training document keeps
        self.position: dict[int, int] = {} if train_rows is None else {int(r): i for i, r in enumerate(train_rows)}
        self.targets: dict[TargetKey, _TargetTable] | None = None  # made on the first step (None: too large)
        self._targets_tried = False

    def _kept(self, c: float) -> sp.csr_matrix | None:
        """Which entries each training document keeps under clip c (a boolean row per document, in
        ``train_rows`` order), found once with :func:`clip_logits` itself; None when the table would hold more
        than ``CLIP_TABLE_ENTRIES`` entries (then each step clips its minibatch)."""
        if c not in self.tables:
            assert self.source is not None and self.train_rows is not None and self.train_counts is not None
            distinct = np.diff(self.train_counts.indptr)  # distinct words per training document
            if np.minimum(c * distinct, self.train_counts.shape[1]).sum() > CLIP_TABLE_ENTRIES:
                self.tables[c] = None
                return None
            parts = []
            for b in range(0, len(self.train_rows), 1024):
                z = torch.from_numpy(np.asarray(self.source.dense(self.train_rows[b: b + 1024]), dtype=np.float32))
                x = torch.from_numpy(self.train_counts[b: b + 1024].toarray().astype(np.float32, copy=False))
                parts.append(sp.csr_matrix(torch.isfinite(clip_logits(z, x, c)).numpy()))
            self.tables[c] = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, 0), dtype=bool)
        return self.tables[c]

    def _positions(self, rows: np.ndarray) -> np.ndarray:
        """Each corpus row's place among the training documents (the tables' row), −1 where it is not one."""
        return np.fromiter((self.position.get(int(r), -1) for r in rows), dtype=np.int64, count=len(rows))

    def _logits(self, rows: np.ndarray, block: sp.csr_matrix, clips: list[float | None]) -> list[torch.Tensor]:
        """The minibatch's logits clipped with each c of ``clips`` (``member_logits``, the kept entries read from
        the tables when the rows are training documents)."""
        z = self.source.dense(rows)  # type: ignore[union-attr]
        if self.train_rows is None or not any(clips):
            return list(member_logits(z, block, clips, self.device))
        where = self._positions(rows)
        tables = [self._kept(c) if c and where.min() >= 0 else None for c in clips]
        if not any(t is not None for t in tables):
            return list(member_logits(z, block, clips, self.device))
        zt = torch.from_numpy(np.asarray(z, dtype=np.float32)).to(self.device)
        return [zt.masked_fill(~torch.from_numpy(t[where].toarray()).to(self.device), float("-inf"))
                if t is not None else member_logits(z, block, [c], self.device)[0] if c else zt
                for c, t in zip(clips, tables, strict=True)]

    def _target(self, z: torch.Tensor, d: DistillConfig, lengths: torch.Tensor) -> torch.Tensor:
        """Member setting ``d``'s target from logits ``z`` already clipped with its c: N_d·softmax((z − γ·log p)/T),
        entries ≤ its min count set to 0 (:func:`teacher_target`)."""
        if d.background_correction and self.background is not None:
            z = z - d.background_correction * self.background  # what every neighbourhood shares, removed
        return teacher_target(z, None, d.temperature, None, d.min_count, doc_lengths=lengths)

    def _target_tables(self) -> dict[TargetKey, _TargetTable] | None:
        """Every λ > 0 member's target for every training document, one table per (c, T, min count, γ), made on the
        first call from 1,024 documents at a time with the step's own operations (so each row holds the numbers a
        step would compute); None without the training documents or when the tables would hold more than
        ``TARGET_TABLE_ENTRIES`` entries (a clipped table holds the kept entries, the others every word)."""
        if self._targets_tried:
            return self.targets
        self._targets_tried = True
        if self.train_rows is None or self.train_counts is None:
            return None
        settings = {_target_key(self.distills[m]): self.distills[m] for m in self.kd}
        n, V = self.train_counts.shape
        kept = {c: self._kept(c) for c in {d.clip for d in settings.values() if d.clip}}
        size = sum(kept[d.clip].nnz if d.clip and kept[d.clip] is not None else n * V for d in settings.values())
        if size > TARGET_TABLE_ENTRIES:
            return None
        parts: dict[TargetKey, list[torch.Tensor | sp.csr_matrix]] = {k: [] for k in settings}
        clips = list(dict.fromkeys(d.clip for d in settings.values()))
        for b in range(0, n, 1024):
            rows, block = self.train_rows[b: b + 1024], self.train_counts[b: b + 1024]
            lengths = torch.from_numpy(np.asarray(block.sum(axis=1), dtype=np.float32).ravel()).to(self.device)
            zs = dict(zip(clips, self._logits(rows, block, clips), strict=True))
            for k, d in settings.items():
                t = self._target(zs[d.clip], d, lengths)
                parts[k].append(sp.csr_matrix(t.cpu().numpy()) if d.clip else t)
        self.targets = {k: _TargetTable.of(p) for k, p in parts.items()}
        return self.targets

    def _read_targets(self, tables: dict[TargetKey, _TargetTable], where: Sequence[np.ndarray]
                      ) -> torch.Tensor | SparseRows:
        """The λ > 0 members' targets of the minibatches at training positions ``where`` (one per seed), read from
        the tables: sparse rows when each holds at most ``SPARSE_TARGET_SHARE`` nonzero entries, as :meth:`step`
        decides from the targets it computes."""
        out = [(self.stream[m], _target_key(self.distills[m])) for m in self.kd]
        unique = list(dict.fromkeys(out))
        B, V = len(where[0]), self.train_counts.shape[1]  # type: ignore[union-attr]
        if all(tables[k].row_nnz[where[g]].sum() <= SPARSE_TARGET_SHARE * B * V for g, k in unique):
            return SparseRows.from_csr([tables[k].rows_csr(where[g]) for g, k in unique],
                                       [unique.index(o) for o in out], self.device)
        dense = {(g, k): tables[k].rows_dense(where[g], self.device) for g, k in unique}
        return torch.stack([dense[o] for o in out])

    def step(self, rows: Sequence[np.ndarray], blocks: Sequence[sp.csr_matrix]
             ) -> tuple[torch.Tensor | None, torch.Tensor | SparseRows | None]:
        """(encoder logits (M, B, V) or None, targets of the λ > 0 members (M_kd, B, V) or None). The targets come
        as :class:`SparseRows` when each holds at most ``SPARSE_TARGET_SHARE`` nonzero entries (a clip on short
        texts): the loss then reads the student only there, with the same gradients (``bat_loss``)."""
        if not self.needed:
            return None, None
        assert self.source is not None
        if not self.encodes and self.kd:
            tables = self._target_tables()
            where = [self._positions(rs) for rs in rows] if tables else []
            if tables and all(len(w) and w.min() >= 0 for w in where):
                return None, self._read_targets(tables, where)
        clipped: dict[tuple[int, float | None], torch.Tensor] = {}
        for g, (r, blk) in enumerate(zip(rows, blocks)):
            clips = list(dict.fromkeys(d.clip for m, d in enumerate(self.distills) if self.stream[m] == g))
            for c, zc in zip(clips, self._logits(r, blk, clips), strict=True):
                clipped[(g, c)] = zc
        enc = None
        if self.encodes:
            enc = torch.stack([clipped[(self.stream[m], d.clip)] for m, d in enumerate(self.distills)])
        if not self.kd:
            return enc, None
        lengths = [torch.from_numpy(np.asarray(b.sum(axis=1), dtype=np.float32).ravel()).to(self.device)
                   for b in blocks]
        targets: dict[tuple, torch.Tensor] = {}
        out = []  # per λ > 0 member, the key of its target
        for m in self.kd:
            d, g = self.distills[m], self.stream[m]
            key = (g, *_target_key(d))
            if key not in targets:
                targets[key] = self._target(clipped[(g, d.clip)], d, lengths[g])
            out.append(key)
        unique = list(targets.values())
        if all(torch.count_nonzero(t) <= SPARSE_TARGET_SHARE * t.numel() for t in unique):
            where = list(targets)
            return enc, SparseRows.from_dense(unique, [where.index(k) for k in out])
        return enc, torch.stack([targets[k] for k in out])


class _Checkpoints:
    """Each member's best epoch by NPMI, kept twice: by the dev split and by the training split.

    Why two: the dev split scores a run only where it sees its topics' top words together. On short texts (a few
    words per document) a dev split of a few hundred documents saw 10-15 % of the top-word pairs (NYT editorial
    sentences), so its NPMI is mostly zeros and its best epoch is noise: the distilled runs' checkpoints fell at epoch
    11-48 of 200, with topic uniqueness 0.48-0.74 against the baseline's 0.84, while NPMI on the training split
    ranked the runs as the longer in-domain reference did (docs/results.md, section 3c). So at the end each member
    keeps the dev split's best epoch when the dev split saw at least ``MIN_PAIRS_SEEN`` of that epoch's top-word
    pairs together (the test the test split must pass to be read, evaluation/coherence.py), and the training split's
    best epoch otherwise. On long texts the dev split sees most pairs and nothing changes."""

    def __init__(self, model: torch.nn.Module, n_members: int, dev: sp.csr_matrix, train: sp.csr_matrix,
                 vocab_size: int) -> None:
        self.stacked = [k for k in model.state_dict() if k not in ("background", "prior_mean", "prior_var")]
        self.counts = {"dev": dev, "train": train}
        # the whole V×V table once when it is small, else a table of this epoch's top words only
        self.scorers = {s: NpmiScorer(c) if vocab_size <= 4096 else None for s, c in self.counts.items()}
        self.best = {s: np.full(n_members, -np.inf) for s in self.counts}
        self.epoch = {s: np.zeros(n_members, dtype=int) for s in self.counts}
        self.state = {s: {k: model.state_dict()[k].detach().clone() for k in self.stacked} for s in self.counts}
        self.dev_seen = np.zeros(n_members)  # share of top-word pairs the dev split saw, at its best epoch

    def score(self, split: str, top: np.ndarray) -> tuple[NpmiScorer, np.ndarray]:
        """The scorer of ``split`` for these topics (M×K×n) and each member's NPMI."""
        scorer = self.scorers[split] or NpmiScorer(self.counts[split], words=np.unique(top))
        return scorer, scorer.per_topic(top).mean(axis=-1)

    def update(self, model: torch.nn.Module, epoch: int, top: np.ndarray, running: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score this epoch's topics on both splits and keep the weights of the members that improved on either.
        Returns (dev NPMI, training-split NPMI, whether a member improved on either)."""
        now = model.state_dict()
        scores, any_better = {}, np.zeros(len(running), dtype=bool)
        for split in self.counts:
            scorer, npmi = self.score(split, top)
            better = running & (npmi > self.best[split])
            if better.any():
                sel = torch.from_numpy(np.flatnonzero(better)).to(next(iter(now.values())).device)
                with torch.no_grad():
                    for k in self.stacked:
                        self.state[split][k].index_copy_(0, sel, now[k].index_select(0, sel))
                self.best[split][better], self.epoch[split][better] = npmi[better], epoch
                if split == "dev":
                    self.dev_seen[better] = [scorer.pairs_seen(top[m]) for m in np.flatnonzero(better)]
            scores[split], any_better = npmi, any_better | better
        return scores["dev"], scores["train"], any_better

    def chosen(self) -> np.ndarray:
        """Per member, the split whose best epoch it keeps: "dev" where the dev split can score its topics."""
        return np.where(self.dev_seen >= MIN_PAIRS_SEEN, "dev", "train")

    def restore(self, model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        """Load each member's kept epoch into ``model``; returns (best epoch, the split that chose it) per member."""
        on = self.chosen()
        now = model.state_dict()
        with torch.no_grad():
            for split in self.counts:
                sel = np.flatnonzero(on == split)
                if len(sel):
                    idx = torch.from_numpy(sel).to(now[self.stacked[0]].device)
                    for k in self.stacked:
                        now[k].index_copy_(0, idx, self.state[split][k].index_select(0, idx))
        epochs = np.where(on == "dev", self.epoch["dev"], self.epoch["train"])
        return epochs, on


def _fit_stack(corpus: Corpus, members: Sequence[Member], teacher: LogitsSource | None, device: torch.device,
               progress: Progress | None, should_stop: ShouldStop | None) -> list[Run]:
    t0 = time.time()
    cfg = members[0][0]  # every setting but the seed is shared by the stack
    distills = [d for _, d in members]
    M, V, K = len(members), corpus.vocab_size, cfg.n_topics
    seeds = list(dict.fromkeys(c.seed for c, _ in members))
    stream = [seeds.index(c.seed) for c, _ in members]  # member → its seed's random streams
    stream_t = torch.tensor(stream, device=device)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    rngs = [np.random.default_rng(s) for s in seeds]

    train_idx = corpus.splits["train"]
    X_train = sp.csr_matrix(corpus.counts[train_idx], dtype=np.float32)
    dev_counts = corpus.split_counts("dev")
    bg = background_log_frequencies(np.asarray(X_train.sum(axis=0)).ravel())
    model = student_class(cfg.student)(V, K, bg, cfg.emb_dim, cfg.alpha, cfg.dropout, distills[0].encode_logits, M,
                    [gens[g] for g in stream]).to(device)
    opt = _adam([p for p in model.parameters() if p.requires_grad], cfg)
    fetch = _Teacher(teacher, distills, stream, device, bg, train_idx, X_train)
    lam = torch.tensor([d.lam for d in distills], device=device)
    k0 = M - len(fetch.kd)  # fit_students orders a stack's members so that the λ > 0 ones come last
    assert fetch.kd == list(range(k0, M))
    kd_temp = torch.tensor([distills[m].temperature for m in fetch.kd], device=device).view(-1, 1, 1)
    fade = torch.tensor([distills[m].fade for m in fetch.kd], device=device)
    untempered = all(distills[m].temperature == 1 for m in fetch.kd)  # then q^T = x̂: one softmax serves both

    n = len(train_idx)
    batch = scheduling.batch_size(cfg, n)
    steps = max(1, n // batch)
    p_bn = 1.0 if model.anneals_bn else 0.0
    checkpoints = _Checkpoints(model, M, dev_counts, X_train, V)
    stale = np.zeros(M, dtype=int)
    running = np.ones(M, dtype=bool)  # False once a member's patience ran out: later epochs are not its own
    histories: list[list[dict[str, Any]]] = [[] for _ in range(M)]
    stage = (f"student λ={distills[0].lam:g} seed={cfg.seed}" if M == 1 else
             f"students ×{M} (λ {', '.join(f'{lam:g}' for lam in dict.fromkeys(d.lam for d in distills))}; seeds "
             f"{', '.join(map(str, seeds))})")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total = torch.zeros(M, device=device)
        lam_now = lam.clone()
        lam_now[k0:] *= _fade_factor(fade, epoch, cfg.epochs)
        for _ in range(steps):
            check_stop(should_stop)
            local = [rng.integers(n, size=batch) for rng in rngs]
            blocks = [X_train[r] for r in local]
            x = SparseRows.build(blocks, stream, V, device)
            enc_logits, target = fetch.step([train_idx[r] for r in local], blocks)
            noise = model.draw(gens, batch, device, stream_t)
            _, eta, eta_bn, mu, logvar = model(x, enc_logits, noise, decode_bn=p_bn > 0)
            loss = bat_loss(x, eta, eta_bn, p_bn, model.kl(mu, logvar), lam_now, 1.0 if untempered else kd_temp,
                            target)  # per member: members' gradients never mix
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            total += loss.detach()
        losses = (total / steps).cpu().numpy()
        _check_finite(np.where(running, losses, 0.0), distills, [c.seed for c, _ in members], epoch, cfg.lr)
        top = torch.topk(model.topic_word().detach(), cfg.npmi_top_n, dim=-1).indices.cpu().numpy()  # M×K×n
        dev, trained, improved = checkpoints.update(model, epoch, top, running)
        for m in np.flatnonzero(running):  # TU of this epoch's topics too: distillation trades it (issue #9)
            histories[m].append({"epoch": epoch, "loss": float(losses[m]), "dev_npmi": float(dev[m]),
                                 "train_npmi": float(trained[m]), "tu": topic_uniqueness(top[m]), "p_bn": p_bn})
        stale = np.where(improved, 0, stale + running)
        _report(progress, stage, epoch, cfg.epochs, losses, dev, checkpoints.best["dev"], running)
        p_bn = max(0.0, p_bn - 1.0 / (cfg.bn_anneal * cfg.epochs))
        if cfg.patience is not None:
            running &= stale < cfg.patience
            if not running.any():
                break

    best_epoch, chosen_on = checkpoints.restore(model)
    return _finish(corpus, members, model, teacher, bg, X_train, best_epoch, chosen_on, histories, device,
                   (time.time() - t0))


def _check_finite(losses: np.ndarray, distills: Sequence[DistillConfig], seeds: Sequence[int], epoch: int,
                  lr: float) -> None:
    """Stop with a BatError as soon as a running member's loss is NaN or infinite (pass 0 for the members whose
    patience ran out: their best epoch is kept already): its weights are lost, and its topics (all alike) would
    otherwise be scored and saved as if they were a result."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if len(bad):
        m = int(bad[0])
        raise BatError(f"training diverged: the loss of λ = {distills[m].lam:g}, seed {seeds[m]} became "
                       f"{losses[m]} in epoch {epoch}; lower the learning rate (now {lr:g})"
                       + (" or the temperature" if distills[m].lam > 0 else ""))


def _fade_factor(fade: torch.Tensor, epoch: int, epochs: int) -> torch.Tensor:
    """Per λ > 0 member, the share of λ used in ``epoch``: 1 until the last ``fade``·epochs, then falling linearly
    to 1/(fade·epochs) in the last epoch."""
    left = epochs - epoch + 1  # epochs still to run, this one included
    span = (fade * epochs).clamp(min=1)
    return torch.where(fade > 0, (left / span).clamp(max=1.0), torch.ones_like(fade))


def _report(progress: Progress | None, stage: str, epoch: int, epochs: int, losses: np.ndarray, dev: np.ndarray,
            best: np.ndarray, running: np.ndarray) -> None:
    """One event per epoch; a stack reports its running members' mean loss and dev NPMI and the best dev NPMI."""
    if len(losses) == 1:
        report(progress, stage, epoch, epochs, loss=float(losses[0]), dev_npmi=float(dev[0]),
               best_dev_npmi=float(best[0]))
        return
    report(progress, stage, epoch, epochs, loss=float(losses[running].mean()), dev_npmi=float(dev[running].mean()),
           best_dev_npmi=float(best.max()), members=int(len(losses)), running=int(running.sum()))


def _finish(corpus: Corpus, members: Sequence[Member], model: Scholar, teacher: LogitsSource | None,
            bg: np.ndarray, X_train: sp.csr_matrix, best_epoch: np.ndarray, chosen_on: np.ndarray,
            histories: list[list[dict[str, Any]]],
            device: torch.device, wall: float) -> list[Run]:
    """Best-epoch weights are loaded: refresh the BN statistics, infer θ, score, and build one Run per member."""
    distills = [d for _, d in members]
    encodes = distills[0].encode_logits != "off"
    clips = [d.clip for d in distills]
    train_idx = corpus.splits["train"]
    source = teacher if encodes else None
    train_logits = (lambda rows: source.dense(train_idx[rows])) if source is not None else None
    all_logits = (lambda rows: source.dense(rows)) if source is not None else None
    refresh_bn_statistics(model, X_train, train_logits, clips)
    theta = encode_theta(model, sp.csr_matrix(corpus.counts, dtype=np.float32), all_logits, clips)  # (M, N, K)
    model.refresh_decoder(torch.from_numpy(theta[:, train_idx]))
    dec_beta, dec_bg = (t.detach() for t in model.decoder())  # the eval-mode decoder η = θ·B + b
    betas, backgrounds = (t.detach().cpu().numpy().astype(np.float32) for t in model.run_arrays())
    test = corpus.splits["test"]
    test_counts, dev_counts = corpus.split_counts("test"), corpus.split_counts("dev")
    runs = []
    for m, (cfg, distill) in enumerate(members):
        beta = betas[m]
        with torch.no_grad():
            eta = torch.from_numpy(theta[m][test]).to(device) @ dec_beta[m] + dec_bg[m]
            recon_test = reconstruction(eta, None, 0.0).cpu().numpy()
        top = top_words(beta, cfg.npmi_top_n)
        test_pt = npmi_per_topic(top, test_counts)
        dev_pt = npmi_per_topic(top, dev_counts)
        train_npmi = float(npmi_per_topic(top, X_train).mean())
        metrics = {
            "dev_npmi": float(dev_pt.mean()), "test_npmi": float(test_pt.mean()),
            "test_npmi_per_topic": [float(v) for v in test_pt], "dev_npmi_per_topic": [float(v) for v in dev_pt],
            "tu": topic_uniqueness(top), "test_perplexity": perplexity(test_counts, recon_test),
            "train_npmi": train_npmi, "checkpoint_on": str(chosen_on[m]),
            "best_epoch": int(best_epoch[m]), "epochs_run": len(histories[m]),
            "wall_time_s": wall / len(members),  # a stack's members share its time equally
            "device": describe(device),
        }
        uses_teacher = distill.active
        config = {"student": cfg.to_dict(), "distill": distill.canonical().to_dict(), "corpus_hash": corpus.hash,
                  "corpus_name": corpus.name, "teacher_key": teacher.key if uses_teacher and teacher else None,
                  "teacher": dict(teacher.meta) if uses_teacher and teacher else None}
        key = run_key(corpus.hash, config["teacher_key"], config["student"], config["distill"])
        topics = [[corpus.vocab[i] for i in row] for row in top]
        runs.append(Run(key=key, config=config, beta=beta, background=backgrounds[m], theta=theta[m], metrics=metrics,
                        history=histories[m], topics=topics, state=model.member_state(m)))
    return runs
