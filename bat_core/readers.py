"""Reading user input into a list of document texts: decoding, and the txt / folder / zip / csv / tsv / jsonl / json
readers. Every problem a user can cause is a :class:`BatError` that says what to do.

Accepted inputs: a ``.txt`` file (one document per non-empty line), a folder or ``.zip`` of ``.txt`` files (one
document per file), a ``.csv``/``.tsv``/``.jsonl``/``.json`` file with a text column (auto-detected, overridable), or
the name of an installed corpus (``demo``, see :mod:`bat_core.datasets`).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BatError

TEXT_COLUMN_NAMES = ("text", "body", "content", "document", "doc", "abstract", "article", "review", "message",
                     "sentence", "description", "summary")
MAX_ZIP_MEMBERS = 200_000
MAX_ZIP_BYTES = 2 * 1024**3  # refuse zip bombs: at most 2 GiB of text once unpacked


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


def read_bytes(path: Path) -> bytes:
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


def _record_text(record: str | dict, col: str | None) -> str | None:
    """A record's document text. A bare string is a document. A row whose ``col`` holds no usable text (missing,
    as in a ragged CSV row, null, NaN or nested data, never its repr) is an *empty* document, which
    ``build_corpus`` drops and counts in ``empty_dropped`` (the app shows the count). Anything else (a number in a
    JSON list) is not a record."""
    if isinstance(record, str):
        return record
    if not isinstance(record, dict) or col is None:
        return None
    v = record.get(col)
    if v is None or isinstance(v, dict | list) or (isinstance(v, float) and v != v):
        return ""
    return v if isinstance(v, str) else str(v)


def _records_texts(records: list, col: str | None) -> list[str]:
    return [t for t in (_record_text(r, col) for r in records) if t is not None]


def _csv_records(text: str, where: str, text_column: str | None, delimiter: str | None = None
                 ) -> tuple[list[dict], str, list[str]]:
    """(rows, the text column, all columns) of a CSV/TSV file."""
    csv.field_size_limit(1 << 30)
    if delimiter is None:
        delimiter = _sniff_delimiter(text)

    def parse(quoting: int) -> tuple[list[str], list[dict]]:
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
            return list(reader.fieldnames or []), list(reader)
        except csv.Error as e:
            raise BatError(f"{where} is not a valid CSV file: {e}") from None

    columns, rows = parse(csv.QUOTE_MINIMAL)
    if not columns or not rows:
        raise BatError(f"{where} has no rows; a CSV needs a header line and one row per document")
    twice = [c for c in dict.fromkeys(columns) if columns.count(c) > 1]
    if twice:  # a row keeps only the last of same-named fields: which one is the text would be a silent guess
        raise BatError(f"{where}: the header names column{'s' if len(twice) > 1 else ''} "
                       f"{', '.join(repr(c) for c in twice)} more than once; give every column its own name")
    runaway = _runaway_quote_row(rows, columns, delimiter)
    if runaway is not None:
        if delimiter != "\t":
            raise BatError(f"{where}: an unbalanced quote (\") near data row {runaway + 1} swallows the rows after it "
                           "into one field; fix the quoting or save as .tsv")
        columns, rows = parse(csv.QUOTE_NONE)  # tab-separated files rarely mean quotes as quoting
    return rows, _pick_column(columns, rows, text_column, where), columns


def _sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:20000], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


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


def _json_column(records: list, where: str, text_column: str | None) -> tuple[str | None, list[str]]:
    """(the text column, all columns) of JSON records; no column when every record is a bare string."""
    if all(isinstance(r, str) for r in records):
        return None, []
    dicts = [r for r in records if isinstance(r, dict)]
    if not dicts:
        raise BatError(f"{where}: expected JSON objects (one per document) or strings")
    columns = list(dict.fromkeys(k for r in dicts[:1000] for k in r))
    # bare strings among the objects are documents too, in their place
    return _pick_column(columns, dicts, text_column, where), columns


def _jsonl_records(text: str, where: str) -> list:
    records = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise BatError(f"{where}, line {i}: not valid JSON ({e.msg}); "
                           "a .jsonl file needs one JSON object per line") from None
    return records


def _json_records(text: str, where: str, text_column: str | None) -> list:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        # maybe it is really JSON lines
        if text.lstrip().startswith("{") and "\n" in text.strip():
            return _jsonl_records(text, where)
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
    return data


def parse_bytes(name: str, data: bytes, text_column: str | None = None) -> list[str]:
    """Documents from one uploaded file, dispatched on its extension.

    Whatever a malformed file makes the parsers raise (corrupt compressed data, absurdly nested JSON, …) comes out
    as a :class:`BatError` naming the file, so the app and the CLI never show a traceback for bad input.
    """
    with _unreadable_as_bat_error(name):
        return _parse_bytes(name, data, text_column)


@contextmanager
def _unreadable_as_bat_error(name: str) -> Iterator[None]:
    """Any parser failure on a malformed file becomes one :class:`BatError` naming the file."""
    try:
        yield
    except BatError:
        raise
    except (RecursionError, zlib.error, EOFError, OSError, ValueError, UnicodeError, csv.Error) as e:
        raise BatError(f"{name} could not be read ({type(e).__name__}: {e}); check that it is a valid "
                       f"{Path(name).suffix or 'text'} file") from None


def _parse_bytes(name: str, data: bytes, text_column: str | None) -> list[str]:
    suffix = Path(name).suffix.lower()
    if suffix == ".zip":
        _no_columns(name, text_column)
        return _read_zip(data, name)
    if suffix not in (".txt", ".text", ".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".cor", ""):
        raise BatError(f"{name}: unsupported file type {suffix!r}; use .txt, .zip of .txt, .csv, .tsv, .jsonl or .json")
    if suffix in TABULAR:
        records, col, _ = _table(name, data, text_column)
        texts = _records_texts(records, col)
        if texts and not any(t.strip() for t in texts):
            raise BatError(f"{name}: column {col!r} holds no text in any of its {len(texts):,} rows; name the text "
                           "column with --text-column")
        return texts
    _no_columns(name, text_column)
    return _lines_as_docs(_decode(data, name))


def _no_columns(what: str, text_column: str | None) -> None:
    """A text column named for a source without columns is a mistake to say, not to ignore: the user expects
    documents from that column and would get every line instead."""
    if text_column is not None:
        raise BatError(f"{what} has no columns, so there is no text column {text_column!r} to read; a text column "
                       f"applies to tables ({', '.join(TABULAR)}); drop it to read {what} as it is")


def _table(name: str, data: bytes, text_column: str | None) -> tuple[list, str | None, list[str]]:
    """(records, the text column, all columns) of a csv/tsv/jsonl/json file."""
    suffix = Path(name).suffix.lower()
    text = _decode(data, name)
    if suffix in (".csv", ".tsv"):
        return _csv_records(text, name, text_column, "\t" if suffix == ".tsv" else None)
    records = _jsonl_records(text, name) if suffix in (".jsonl", ".ndjson") else _json_records(text, name, text_column)
    return (records, *_json_column(records, name, text_column))


def parse_labelled(name: str, data: bytes, text_column: str | None, label_column: str
                   ) -> tuple[list[str], list[str | None]]:
    """The documents of a table (exactly those :func:`parse_bytes` reads) and each one's value in ``label_column``
    (None where it is empty): categories for the downstream check. A BatError for files without columns."""
    if Path(name).suffix.lower() not in TABULAR:
        raise BatError(f"{name}: labels need a table (.csv, .tsv, .jsonl or .json) with a label column")
    with _unreadable_as_bat_error(name):
        records, col, columns = _table(name, data, text_column)
    if label_column not in columns:
        raise BatError(f"{name} has no column {label_column!r}; its columns are: {', '.join(map(str, columns))}")
    if label_column == col:
        raise BatError(f"the label column cannot be the text column ({col!r})")
    texts, labels = [], []
    for r in records:
        t = _record_text(r, col)
        if t is None:
            continue
        v = r.get(label_column) if isinstance(r, dict) else None
        texts.append(t)
        labels.append(str(v).strip() or None if v is not None else None)
    return texts, labels


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
    if not s.strip():
        raise BatError("no input given: name a file, a folder, a .zip or an installed corpus "
                       f"({', '.join(datasets.NAMES)})")
    if s in datasets.NAMES:
        _no_columns(f"the installed corpus {s}", text_column)
        return s, datasets.load(s)
    path = Path(s).expanduser()
    if not path.exists():
        known = ", ".join(datasets.NAMES)
        raise BatError(f"{s}: no such file or folder (installed corpora: {known})")
    if not path.is_dir() and not path.is_file():
        raise BatError(f"{s} is not a regular file or folder")
    if path.is_dir():
        _no_columns(f"folder {path}", text_column)
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt"
                       and not p.name.startswith("."))
        if not files:
            raise BatError(f"folder {path} holds no .txt files; put one document per .txt file")
        return path.name, [_decode(read_bytes(p), str(p)).strip() for p in files]
    return path.stem, parse_bytes(path.name, read_bytes(path), text_column)


TABULAR = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")


def tabular_columns(name: str, data: bytes) -> list[str] | None:
    """Column names of a csv/tsv/jsonl/json file, read the way :func:`parse_bytes` reads it (for a text-column
    picker); None for files that have no columns.

    Best effort: an unreadable file gives ``[]``, and the real error comes from :func:`parse_bytes` when it is used.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in TABULAR:
        return None
    try:
        text = _decode(data, name)
        if suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else _sniff_delimiter(text)
            header = next(csv.reader(io.StringIO(text[:2_000_000], newline=""), delimiter=delimiter), [])
            return [h for h in header if h]
        records = _jsonl_records(text, name) if suffix in (".jsonl", ".ndjson") else _json_records(text, name, None)
    except (BatError, RecursionError, ValueError, UnicodeError, csv.Error):
        return []
    return list(dict.fromkeys(k for r in records[:1000] if isinstance(r, dict) for k in r))
