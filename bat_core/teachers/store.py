"""Compact on-disk store of teacher logits (docs/bat-method.md section 10, "Teacher logits on disk").

A teacher gives every document a logit vector over the whole vocabulary: N×V floats, 8 GB for 100k documents × 20k
words. The student only needs the head of each softmax (clipping keeps ≈ c × the document's word types, section 4.2)
plus the right total mass for the rest. So per document we keep

* the top-k logits, sorted best first: ``indices`` (uint16 when V ≤ 65,536, else int32) and ``values`` in fp16
  *relative to the document's largest logit* ``shift`` (float32): fp16 is most precise near 0, which is where the
  highest-probability words then sit, and the raw logits are still recovered as ``shift + value``;
* one ``tail`` logit (float32) given to every word outside the top k, chosen so the tail keeps its softmax mass at
  T = 1: ``tail = log(Σ_tail exp(z) / (V − k))``, hence ``(V − k)·exp(tail) = Σ_tail exp(z)``.

Cost: 4k + 8 bytes per document (2,056 B at k = 512): 100k documents take ≈ 206 MB, whatever V is (below 65,536).
Arrays live in one safetensors file (read with plain ``safetensors`` calls, :mod:`bat_core.base.io`); ``dense(rows)``
expands only the rows asked for. Settings and scores sit next to it in ``meta.json``. No pickle anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp

from ..base.errors import BatError
from ..base.io import atomic_dir, load_arrays, read_json, save_arrays, write_json

ARRAYS_FILE = "logits.safetensors"
META_FILE = "meta.json"
FORMAT_VERSION = 1


def index_dtype(vocab_size: int) -> type[np.integer]:
    return np.uint16 if vocab_size <= 65536 else np.int32


def compress(logits: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Top-k + tail compression of a block of dense logits (rows = documents). Used batch by batch at export."""
    z = np.asarray(logits, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError("logits must be a 2-D array (documents × vocabulary)")
    n, v = z.shape
    k = min(k, v)
    top = np.argpartition(-z, k - 1, axis=1)[:, :k] if k < v else np.tile(np.arange(v), (n, 1))
    top_z = np.take_along_axis(z, top, axis=1)
    order = np.argsort(-top_z, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top_z = np.take_along_axis(top_z, order, axis=1)
    shift = top_z[:, 0].copy() if k > 0 else z.max(axis=1)
    if k < v:
        rest = z.astype(np.float64)
        np.put_along_axis(rest, top, -np.inf, axis=1)
        tail = (logsumexp(rest, axis=1) - np.log(v - k)).astype(np.float32)
    else:
        tail = np.full(n, -np.inf, dtype=np.float32)
    return {"indices": top.astype(index_dtype(v)), "values": (top_z - shift[:, None]).astype(np.float16),
            "shift": shift.astype(np.float32), "tail": tail}


class TeacherLogits:
    """Raw (pre-temperature) teacher logits for every document of a corpus, in corpus row order."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Path | None = None) -> None:
        self.indices = arrays["indices"]
        self.values = arrays["values"]
        self.shift = arrays["shift"]
        self.tail = arrays["tail"]
        self.fold = arrays.get("fold")  # cross-fitting: fold of each train document, −1 for dev/test (or None)
        self.meta = meta
        self.path = path

    def same_logits(self, other: TeacherLogits) -> bool:
        """Whether ``other`` holds the same logits bit for bit (then a student trained on one is the student of the
        other: the trainer reads nothing else of a teacher)."""
        if (self.fold is None) != (other.fold is None):
            return False
        pairs = [(self.indices, other.indices), (self.values, other.values), (self.shift, other.shift),
                 (self.tail, other.tail)] + ([] if self.fold is None else [(self.fold, other.fold)])
        return all(a.shape == b.shape and np.array_equal(a, b) for a, b in pairs)

    # ------------------------------------------------------------------------------------------------ properties
    @property
    def key(self) -> str:
        return str(self.meta.get("key", ""))

    @property
    def n_docs(self) -> int:
        return int(self.indices.shape[0])

    @property
    def vocab_size(self) -> int:
        return int(self.meta["V"])

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    @property
    def nbytes(self) -> int:
        arrays = [self.indices, self.values, self.shift, self.tail] + ([self.fold] if self.fold is not None else [])
        return int(sum(a.nbytes for a in arrays))

    def __repr__(self) -> str:
        return f"TeacherLogits(key={self.key!r}, n_docs={self.n_docs}, V={self.vocab_size}, k={self.k})"

    # ------------------------------------------------------------------------------------------------ reading
    def dense(self, rows: np.ndarray | list[int] | slice | None = None) -> np.ndarray:
        """float32 (len(rows) × V) raw logits: kept entries exact to fp16, every other word gets the tail logit."""
        if rows is None:
            rows = slice(None)
        elif not isinstance(rows, slice):
            rows = np.asarray(rows, dtype=np.int64).reshape(-1)
            if rows.size and (rows.min() < -self.n_docs or rows.max() >= self.n_docs):
                raise IndexError(f"row index out of range for {self.n_docs} documents")
        idx = np.asarray(self.indices[rows], dtype=np.int64)
        shift = np.asarray(self.shift[rows], dtype=np.float32)
        vals = np.asarray(self.values[rows], dtype=np.float32) + shift[:, None]
        out = np.empty((idx.shape[0], self.vocab_size), dtype=np.float32)
        out[:] = np.asarray(self.tail[rows], dtype=np.float32)[:, None]
        np.put_along_axis(out, idx, vals, axis=1)
        return out

    def top_words(self, row: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Indices and raw logits of the teacher's n best words for one document (best first)."""
        n = min(n, self.k)
        return (np.asarray(self.indices[row, :n], dtype=np.int64),
                np.asarray(self.values[row, :n], dtype=np.float32) + float(self.shift[row]))

    # ------------------------------------------------------------------------------------------------ building
    @classmethod
    def from_dense(cls, logits: np.ndarray, meta: dict[str, Any] | None = None, k: int = 512) -> TeacherLogits:
        arrays = compress(logits, k)
        return cls(arrays, _complete_meta(dict(meta or {}), arrays, np.asarray(logits).shape[1]))

    @classmethod
    def from_blocks(cls, blocks: list[dict[str, np.ndarray]], meta: dict[str, Any], vocab_size: int,
                    fold: np.ndarray | None = None) -> TeacherLogits:
        """Join :func:`compress` outputs (in row order) into one store."""
        arrays = {name: np.concatenate([b[name] for b in blocks]) for name in ("indices", "values", "shift", "tail")}
        if fold is not None:
            arrays["fold"] = np.asarray(fold, dtype=np.int8)
        return cls(arrays, _complete_meta(dict(meta), arrays, vocab_size))

    # ------------------------------------------------------------------------------------------------ files
    def save(self, directory: str | Path, guard: bool = True) -> Path:
        """Write ``logits.safetensors`` + ``meta.json`` atomically (a temporary folder renamed into place); with
        ``guard`` (a folder the user named) never over a folder that holds anything else (``io.atomic_dir``)."""
        directory = Path(directory)
        arrays = {"indices": self.indices, "values": self.values, "shift": self.shift, "tail": self.tail}
        if self.fold is not None:
            arrays["fold"] = self.fold
        with atomic_dir(directory, guard) as tmp:
            save_arrays(tmp / ARRAYS_FILE, arrays)
            write_json(tmp / META_FILE, self.meta, sort_keys=True)
        self.path = directory
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TeacherLogits:
        directory = Path(directory)
        if not (directory / META_FILE).is_file() or not (directory / ARRAYS_FILE).is_file():
            raise BatError(f"{directory} is not a teacher logits folder (it needs {META_FILE} and {ARRAYS_FILE})")
        try:
            meta = read_json(directory / META_FILE)
            arrays = load_arrays(directory / ARRAYS_FILE)
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for a damaged file
            raise BatError(f"teacher logits in {directory} are unreadable ({e}); delete the folder to rebuild it") \
                from None
        if meta.get("format") != FORMAT_VERSION or not {"indices", "values", "shift", "tail"} <= arrays.keys():
            raise BatError(f"teacher logits in {directory} have an unknown format; delete the folder to rebuild it")
        return cls(arrays, meta, directory)


def _complete_meta(meta: dict[str, Any], arrays: dict[str, np.ndarray], vocab_size: int) -> dict[str, Any]:
    meta.update(format=FORMAT_VERSION, V=int(vocab_size), k=int(arrays["indices"].shape[1]),
                n_docs=int(arrays["indices"].shape[0]))
    return meta

