"""From user input to a :class:`Corpus`: reading, cleaning, boilerplate removal, vectorising, splitting.

Accepted inputs: a ``.txt`` file (one document per non-empty line), a folder or ``.zip`` of ``.txt`` files (one
document per file), a ``.csv``/``.tsv``/``.jsonl``/``.json`` file with a text column (auto-detected, overridable), or
the name of an installed corpus (``demo``, see :mod:`bat_core.datasets`). Every problem a user can cause is raised as
:class:`BatError` with a message that says what to do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from .config import CorpusConfig
from .errors import BatError
from .progress import Progress, report

TEXT_COLUMN_NAMES = ("text", "body", "content", "document", "doc", "abstract", "article", "review", "message",
                     "sentence", "description", "summary")
MAX_ZIP_MEMBERS = 200_000
MAX_ZIP_BYTES = 2 * 1024**3  # refuse zip bombs: at most 2 GiB of text once unpacked
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True, eq=False)
class Corpus:
    """An immutable corpus: texts, the fitted vocabulary, sparse counts, split indices and a content hash."""

    name: str
    texts: list[str]
    counts: sp.csr_matrix
    vocab: list[str]
    splits: dict[str, np.ndarray]
    config: CorpusConfig
    stats: dict = field(default_factory=dict)
    hash: str = ""

    @property
    def n_docs(self) -> int:
        return self.counts.shape[0]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def split_counts(self, split: str) -> sp.csr_matrix:
        return self.counts[self.splits[split]]

    def split_texts(self, split: str) -> list[str]:
        return [self.texts[i] for i in self.splits[split]]


# ---------------------------------------------------------------------------------------------------------- reading
def _decode(data: bytes, where: str) -> str:
    """Decode bytes as text: UTF-8 (with or without BOM), UTF-16 (with a BOM, or detected by its zero bytes), else
    Windows-1252 for legacy files. Binary data is refused instead of being decoded into garbage.
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    sample = data[:65536]
    if sample.count(0) > 0.01 * len(sample):  # NUL bytes are valid UTF-8, so look for BOM-less UTF-16 first
        for enc, zeros in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
            if zeros and zeros.count(0) / len(zeros) > 0.9:
                try:
                    return _check_readable(data.decode(enc), where)
                except UnicodeDecodeError:
                    pass
        raise BatError(f"{where} is not a text file (it contains binary data); give plain text in UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if b"\x00" in sample:  # not UTF-8 and has NULs: no legacy text encoding looks like this
            raise BatError(f"{where} is not a text file (it contains binary data); give plain text in UTF-8") from None
        text = data.decode("cp1252", errors="replace")
    return _check_readable(text, where)


def _check_readable(text: str, where: str) -> str:
    sample = text[:65536]
    if sample:
        control = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\n\r\t\f\v") or ch == "\ufffd")
        if control / len(sample) > 0.05:
            raise BatError(f"{where} does not look like readable text (too many control or undecodable characters); "
                           "save it as UTF-8 plain text")
    return text


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise BatError(f"cannot read {path}: permission denied") from None
    except OSError as e:
        raise BatError(f"cannot read {path}: {e.strerror or e}") from None


def _lines_as_docs(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _pick_column(columns: list[str], rows: list[dict], text_column: str | None, where: str) -> str:
    if text_column is not None:
        if text_column not in columns:
            raise BatError(f"{where} has no column {text_column!r}; its columns are: {', '.join(map(str, columns))}")
        return text_column
    lower: dict[str, str] = {}
    for c in columns:  # the first spelling wins: "text" before a later "TEXT"
        lower.setdefault(str(c).lower().strip(), c)
    for name in TEXT_COLUMN_NAMES:
        if name in lower:
            return lower[name]
    # fall back to the column whose values are longest on average, if they look like prose
    best, best_len = None, 0.0
    for c in columns:
        vals = [r.get(c) for r in rows[:500]]
        strs = [v for v in vals if isinstance(v, str)]
        if len(strs) < max(1, len(vals) // 2):
            continue
        avg = sum(len(s) for s in strs) / len(vals)
        if avg > best_len and sum(" " in s for s in strs) >= len(strs) // 2:
            best, best_len = c, avg
    if best is None or best_len < 10:
        raise BatError(f"{where}: could not find a text column among {', '.join(map(str, columns)) or 'no columns'}; "
                       "name one with --text-column")
    return best


def _column_texts(rows: list[dict], col: str) -> list[str]:
    out = []
    for r in rows:
        v = r.get(col)
        if v is None:
            continue
        out.append(v if isinstance(v, str) else str(v))
    return out


def _read_csv(text: str, where: str, text_column: str | None, delimiter: str | None = None) -> list[str]:
    csv.field_size_limit(1 << 30)
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","

    def parse(quoting: int) -> tuple[list[str], list[dict]]:
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
            return list(reader.fieldnames or []), list(reader)
        except csv.Error as e:
            raise BatError(f"{where} is not a valid CSV file: {e}") from None

    columns, rows = parse(csv.QUOTE_MINIMAL)
    if not columns or not rows:
        raise BatError(f"{where} has no rows; a CSV needs a header line and one row per document")
    runaway = _runaway_quote_row(rows, columns, delimiter)
    if runaway is not None:
        if delimiter != "\t":
            raise BatError(f"{where}: an unbalanced quote (\") near data row {runaway + 1} swallows the rows after it "
                           "into one field; fix the quoting or save as .tsv")
        columns, rows = parse(csv.QUOTE_NONE)  # tab-separated files rarely mean quotes as quoting
    col = _pick_column(columns, rows, text_column, where)
    return _column_texts(rows, col)


def _runaway_quote_row(rows: list[dict], columns: list[str], delimiter: str) -> int | None:
    """Index of a row whose field absorbed later rows (an opening quote never closed), or None.

    A legitimate quoted field may hold line breaks, but not several lines that each look like a whole row (as many
    delimiters as the header has)."""
    need = max(1, len(columns) - 1)
    for i, row in enumerate(rows):
        for v in row.values():
            if isinstance(v, str) and v.count("\n") >= 2:
                rowlike = sum(1 for ln in v.split("\n")[1:] if ln.count(delimiter) >= need)
                if rowlike >= 2:
                    return i
    return None


def _records_texts(records: list, where: str, text_column: str | None) -> list[str]:
    if all(isinstance(r, str) for r in records):
        return list(records)
    dicts = [r for r in records if isinstance(r, dict)]
    if not dicts:
        raise BatError(f"{where}: expected JSON objects (one per document) or strings")
    columns = list(dict.fromkeys(k for r in dicts[:1000] for k in r))
    col = _pick_column(columns, dicts, text_column, where)
    # bare strings among the objects are documents too, in their place
    return [r if isinstance(r, str) else str(r[col]) for r in records
            if isinstance(r, str) or (isinstance(r, dict) and r.get(col) is not None)]


def _read_jsonl(text: str, where: str, text_column: str | None) -> list[str]:
    records = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise BatError(f"{where}, line {i}: not valid JSON ({e.msg}); "
                           "a .jsonl file needs one JSON object per line") from None
    return _records_texts(records, where, text_column)


def _read_json(text: str, where: str, text_column: str | None) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        # maybe it is really JSON lines
        if text.lstrip().startswith("{") and "\n" in text.strip():
            return _read_jsonl(text, where, text_column)
        raise BatError(f"{where} is not valid JSON (line {e.lineno}: {e.msg})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            data = lists[0]
        elif text_column and isinstance(data.get(text_column), list):
            data = data[text_column]
        else:
            raise BatError(f"{where}: expected a JSON list of documents (objects or strings)")
    if not isinstance(data, list):
        raise BatError(f"{where}: expected a JSON list of documents (objects or strings)")
    return _records_texts(data, where, text_column)


def parse_bytes(name: str, data: bytes, text_column: str | None = None) -> list[str]:
    """Documents from one uploaded file, dispatched on its extension.

    Whatever a malformed file makes the parsers raise (corrupt compressed data, absurdly nested JSON, …) comes out
    as a :class:`BatError` naming the file, so the app and the CLI never show a traceback for bad input.
    """
    try:
        return _parse_bytes(name, data, text_column)
    except BatError:
        raise
    except (RecursionError, zlib.error, EOFError, OSError, ValueError, UnicodeError, csv.Error) as e:
        raise BatError(f"{name} could not be read ({type(e).__name__}: {e}); check that it is a valid "
                       f"{Path(name).suffix or 'text'} file") from None


def _parse_bytes(name: str, data: bytes, text_column: str | None) -> list[str]:
    suffix = Path(name).suffix.lower()
    if suffix == ".zip":
        return _read_zip(data, name)
    if suffix not in (".txt", ".text", ".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".cor", ""):
        raise BatError(f"{name}: unsupported file type {suffix!r}; use .txt, .zip of .txt, .csv, .tsv, .jsonl or .json")
    text = _decode(data, name)
    if suffix in (".csv", ".tsv"):
        return _read_csv(text, name, text_column, "\t" if suffix == ".tsv" else None)
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(text, name, text_column)
    if suffix == ".json":
        return _read_json(text, name, text_column)
    return _lines_as_docs(text)


def _read_zip(data: bytes, where: str) -> list[str]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BatError(f"{where} is not a valid zip archive") from None
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir() and i.filename.lower().endswith(".txt")
                   and not Path(i.filename).name.startswith(".") and "__MACOSX" not in i.filename]
        if not members:
            raise BatError(f"{where} holds no .txt files; put one document per .txt file in the zip")
        if len(members) > MAX_ZIP_MEMBERS or sum(i.file_size for i in members) > MAX_ZIP_BYTES:
            raise BatError(f"{where} is too large once unpacked (limit {MAX_ZIP_MEMBERS} files, 2 GiB)")
        docs = []
        for info in sorted(members, key=lambda i: i.filename):
            try:
                raw = zf.read(info)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError, OSError) as e:
                raise BatError(f"{where}: cannot read {info.filename} ({e})") from None
            docs.append(_decode(raw, f"{where}:{info.filename}").strip())
        return docs


def read_documents(source: str | Path, text_column: str | None = None) -> tuple[str, list[str]]:
    """(name, raw documents) for a path or an installed corpus name."""
    from . import datasets

    s = str(source)
    if s in datasets.NAMES:
        return s, datasets.load(s)
    path = Path(s).expanduser()
    if not path.exists():
        known = ", ".join(datasets.NAMES)
        raise BatError(f"{s}: no such file or folder (installed corpora: {known})")
    if not path.is_dir() and not path.is_file():
        raise BatError(f"{s} is not a regular file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt"
                       and not p.name.startswith("."))
        if not files:
            raise BatError(f"folder {path} holds no .txt files; put one document per .txt file")
        return path.name, [_decode(_read_bytes(p), str(p)).strip() for p in files]
    return path.stem, parse_bytes(path.name, _read_bytes(path), text_column)


# ---------------------------------------------------------------------------------------------------- boilerplate
_WS = re.compile(r"\s+")


def remove_boilerplate(docs: list[str], min_frac: float = 0.01, min_docs: int = 5, run_len: int = 8
                       ) -> tuple[list[str], dict]:
    """Drop lines, and runs of ``run_len``+ words, that repeat verbatim across many documents.

    Share buttons, bylines, licence footers and navigation text are repeated across documents of one source; they form
    artefact topics with near-perfect NPMI. A line (or an 8-word run) found in at least ``max(min_docs, min_frac·N)``
    documents is removed. Returns the cleaned documents and what was removed.
    """
    n = len(docs)
    threshold = max(min_docs, int(np.ceil(min_frac * n)))
    stats = {"boilerplate_threshold_docs": threshold, "boilerplate_docs_touched": 0, "boilerplate_words_removed": 0}
    if n < threshold:
        return docs, stats
    # 1) whole lines
    line_df: Counter[str] = Counter()
    doc_lines = []
    for d in docs:
        lines = [_WS.sub(" ", ln).strip() for ln in d.splitlines()]
        doc_lines.append(lines)
        line_df.update({ln for ln in lines if len(ln) >= 10})
    bad_lines = {ln for ln, c in line_df.items() if c >= threshold}
    # 2) word runs (shingles), on what remains
    doc_words = []
    for lines in doc_lines:
        doc_words.append([(" ".join(ln for ln in lines if ln not in bad_lines)).split()])
    shingle_df: Counter[int] = Counter()
    for (words,) in doc_words:
        if len(words) >= run_len:
            shingle_df.update({hash(tuple(words[i:i + run_len])) for i in range(len(words) - run_len + 1)})
    bad_shingles = {h for h, c in shingle_df.items() if c >= threshold}
    out = []
    touched = removed = 0
    for d, (words,) in zip(docs, doc_words):
        n_before = len(d.split())
        if bad_shingles and len(words) >= run_len:
            keep = np.ones(len(words), dtype=bool)
            for i in range(len(words) - run_len + 1):
                if hash(tuple(words[i:i + run_len])) in bad_shingles:
                    keep[i:i + run_len] = False
            words = [w for w, k in zip(words, keep) if k]
        if len(words) != n_before:
            touched += 1
            removed += n_before - len(words)
            out.append(" ".join(words))
        else:
            out.append(d)
    stats.update(boilerplate_docs_touched=touched, boilerplate_words_removed=removed,
                 boilerplate_lines=len(bad_lines), boilerplate_runs=len(bad_shingles))
    return out, stats


# ------------------------------------------------------------------------------------------------------ vectorising
def make_vectorizer(cfg: CorpusConfig, vocabulary: list[str] | None = None) -> CountVectorizer:
    stop = sorted(set(ENGLISH_STOP_WORDS) | {w.lower() for w in cfg.extra_stop_words})
    kw: dict = {"vocabulary": vocabulary} if vocabulary is not None else {
        "min_df": cfg.min_df if cfg.min_df < 1 else int(cfg.min_df),
        "max_df": cfg.max_df if cfg.max_df <= 1 else int(cfg.max_df),
        "max_features": cfg.vocab_size,
    }
    return CountVectorizer(lowercase=True, stop_words=stop, token_pattern=rf"(?u)\b[^\W\d_]{{{cfg.min_token_len},}}\b",
                           dtype=np.float32, **kw)


def _split_indices(n: int, cfg: CorpusConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(cfg.split_seed)
    perm = rng.permutation(n)
    n_test = max(1, int(round(cfg.test_frac * n)))
    n_dev = max(1, int(round(cfg.dev_frac * n)))
    return {"test": np.sort(perm[:n_test]), "dev": np.sort(perm[n_test:n_test + n_dev]),
            "train": np.sort(perm[n_test + n_dev:])}


MIN_DOCS = 10


def hash_texts(h: Any, docs: list[str]) -> None:  # h: a hashlib object
    """Feed the documents, in order, into the hash ``h``: what names a corpus (with its settings) and an upload."""
    for d in docs:
        h.update(hashlib.sha1(d.encode("utf-8", "surrogatepass")).digest())


_NOT_WORD = re.compile(r"[\W_]+")


def duplicate_key(doc: str) -> str:
    """What two copies of one text share: its words, lower-cased, without punctuation or spacing."""
    return _NOT_WORD.sub(" ", doc.lower()).strip()


def drop_duplicates(docs: list[str]) -> list[str]:
    """Keep the first of every group of documents that are the same text up to case, punctuation and spacing.

    Runs after boilerplate removal: two copies of an article that differ only in a share line or a byline are the
    same text once those are gone. Twins left in would be each other's nearest neighbour in the knn teacher (its
    target would carry the document's own words) and would be counted twice by NPMI.
    """
    seen: set[str] = set()
    unique = []
    for d in docs:
        k = duplicate_key(d)
        if not k or k not in seen:  # a text with no word at all is dropped later, as empty after vectorising
            seen.add(k)
            unique.append(d)
    return unique


def build_corpus(docs: list[str], cfg: CorpusConfig | None = None, name: str = "corpus",
                 progress: Progress | None = None) -> Corpus:
    """Clean, vectorise and split raw documents. The vocabulary is fitted on the training split only."""
    cfg = cfg or CorpusConfig()
    stats: dict = {"documents_read": len(docs)}
    report(progress, "corpus", 0, 3, "cleaning")
    docs = [d.replace("\x00", " ").strip() for d in docs if isinstance(d, str)]
    docs = [d for d in docs if d]
    stats["empty_dropped"] = stats["documents_read"] - len(docs)
    n_read = len(docs)
    docs = list(dict.fromkeys(docs))  # exact copies first, so that they cannot make an article look like boilerplate
    dropped = n_read - len(docs)
    if cfg.max_docs is not None:
        docs = docs[: cfg.max_docs]
    if cfg.remove_boilerplate:
        docs, bp = remove_boilerplate(docs, cfg.boilerplate_min_docs)
        stats.update(bp)
    n_cleaned = len(docs)
    docs = drop_duplicates(docs)
    stats["duplicates_dropped"] = dropped + n_cleaned - len(docs)
    if len(docs) < MIN_DOCS:
        raise BatError(f"only {len(docs)} non-empty distinct documents; a topic model needs at least {MIN_DOCS} "
                       "(a .txt file holds one document per line; a .csv/.jsonl/.json one per row)")
    report(progress, "corpus", 1, 3, "vectorising")
    splits = _split_indices(len(docs), cfg)
    vec = make_vectorizer(cfg)
    train_docs = [docs[i] for i in splits["train"]]
    try:
        vec.fit(train_docs)
    except ValueError as e:
        msg = str(e)
        if "empty vocabulary" in msg:
            raise BatError("no words are left after preprocessing (stop words, tokens of at least "
                           f"{cfg.min_token_len} letters); is this English prose?") from None
        if "max_df corresponds to" in msg or "min_df" in msg:
            raise BatError(f"min_df={cfg.min_df} and max_df={cfg.max_df} leave no words for {len(train_docs)} training "
                           "documents; lower min_df or raise max_df") from None
        raise BatError(f"could not build a vocabulary: {msg}") from None
    vocab = list(vec.get_feature_names_out())
    counts = sp.csr_matrix(vec.transform(docs), dtype=np.float32)
    # drop documents that have no in-vocabulary word left
    keep = np.flatnonzero(np.asarray(counts.sum(axis=1)).ravel() > 0)
    stats["empty_after_vectorising"] = int(len(docs) - len(keep))
    if len(keep) < len(docs):
        remap = -np.ones(len(docs), dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        splits = {k: remap[v][remap[v] >= 0] for k, v in splits.items()}
        docs = [docs[i] for i in keep]
        counts = counts[keep]
    for s in SPLITS:
        if len(splits[s]) == 0:
            raise BatError(f"the {s} split is empty after preprocessing; give more documents")
    if len(vocab) < 10:
        raise BatError(f"only {len(vocab)} distinct words survive preprocessing; give more or longer documents")
    report(progress, "corpus", 2, 3, "hashing")
    h = hashlib.sha256()
    h.update(cfg.key().encode())
    hash_texts(h, docs)
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    stats.update(documents=len(docs), vocabulary=len(vocab), tokens=int(lengths.sum()),
                 mean_doc_length=float(lengths.mean()), **{f"{s}_docs": int(len(splits[s])) for s in SPLITS})
    report(progress, "corpus", 3, 3, "done")
    return Corpus(name=name, texts=docs, counts=counts, vocab=vocab, splits=splits, config=cfg, stats=stats,
                  hash=h.hexdigest()[:16])


def load_corpus(source: str | Path, cfg: CorpusConfig | None = None, progress: Progress | None = None) -> Corpus:
    """Read and build a corpus from a path or an installed corpus name (``demo``)."""
    cfg = cfg or CorpusConfig()
    name, docs = read_documents(source, cfg.text_column)
    return build_corpus(docs, cfg, name=name, progress=progress)


def vectorize_reference(docs: list[str], corpus: Corpus) -> sp.csr_matrix:
    """Count matrix of other texts (an external NPMI reference) over the corpus's vocabulary."""
    return sp.csr_matrix(make_vectorizer(corpus.config, corpus.vocab).transform(docs), dtype=np.float32)
