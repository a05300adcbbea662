"""Reading user input into a list of document texts: decoding, and the txt / folder / zip / csv / tsv / jsonl / json
readers. Every problem a user can cause is a :class:`BatError` that says what to do.

Accepted inputs: a ``.txt`` file (one document per non-empty line), a folder or ``.zip`` of ``.txt`` files (one
document per file), a ``.csv``/``.tsv``/``.jsonl``/``.json`` file with a text column (auto-detected, overridable), or
the name of an installed corpus (``demo``, see :mod:`bat_core.data.datasets`).
"""

from __future__ import annotations

import csv
import io
import lzma
import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..base.errors import BatError
from .tables import (
    NAME_THE_COLUMN,
    csv_records,
    json_column,
    json_records,
    jsonl_records,
    lines,
    listed,
    record_text,
    sniff_delimiter,
)

MAX_ZIP_MEMBERS = 200_000
# Refuse zip bombs. Unpacked text costs about 30× its size in memory once read, cleaned and counted (a 200 MB member
# peaked at 5.8 GB), so 2 GiB could not be trained anyway; and text compresses 3-5×, so a ratio far above that is
# an archive built to expand, not a corpus
MAX_ZIP_BYTES = 512 * 1024**2
MAX_ZIP_RATIO = 50  # unpacked ÷ packed, over the .txt members, checked once they unpack to more than 10 MB
# UTF-32's BOMs first (FF FE 00 00 starts with UTF-16's); the breaks of str.splitlines() that are spacing in a line
_BOMS = {b"\xff\xfe\x00\x00": "utf-32", b"\x00\x00\xfe\xff": "utf-32", b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}
_NOT_LINE_ENDS = str.maketrans(dict.fromkeys("\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", " "))


# ---------------------------------------------------------------------------------------------------------- reading
def _decode(data: bytes, where: str) -> str:
    """Decode bytes as text: UTF-8 (with or without BOM), UTF-32 or UTF-16 (with a BOM; UTF-16 also detected by its
    zero bytes), else Windows-1252 for legacy files. Binary data is refused instead of being decoded into garbage,
    also after a BOM: two bytes do not make a text file."""
    for bom, enc in _BOMS.items():
        if data.startswith(bom):
            with suppress(UnicodeDecodeError):  # else not that encoding (FF FE 00 00 may be UTF-16): judged below
                return _check_readable(data.decode(enc), where)
    sample = data[:65536]
    if sample.count(0) > 0.01 * len(sample):  # NUL bytes are valid UTF-8, so look for BOM-less UTF-16 first
        for enc, zeros in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
            if zeros and zeros.count(0) / len(zeros) > 0.9:
                with suppress(UnicodeDecodeError):
                    return _check_readable(data.decode(enc), where)
        raise BatError(f"{where} is not a text file (it contains binary data); give plain text in UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if b"\x00" in sample:  # not UTF-8 and has NULs: no legacy text encoding looks like this
            raise BatError(f"{where} is not a text file (it contains binary data); give plain text in UTF-8") from None
        text = _mostly_utf8(data) or data.decode("cp1252", errors="replace")
    return _check_readable(text, where)


def _mostly_utf8(data: bytes) -> str | None:
    """The text of a UTF-8 file with a few stray bytes (each becomes U+FFFD), or None for a legacy encoding.

    Why: one stray byte (a Windows quote pasted into UTF-8 text) made the whole file decode as Windows-1252, and
    every accented word became two garbled tokens ("München" → "MÃ¼nchen") without a word said. The test: some
    non-ASCII characters decode as UTF-8, and the bytes that do not are few (at most 3, or one in 20 of those that
    do). Legacy text almost never forms valid multi-byte UTF-8 sequences, so it fails the test; so does a file
    that mixes the two encodings half and half, which stays Windows-1252 as before."""
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())  # a U+FFFD already in the file is no stray byte
    good = len(text) - len(text.encode("ascii", "ignore")) - bad  # the non-ASCII characters that decoded
    return text if good > 0 and bad <= max(3, good // 20) else None


def _check_readable(text: str, where: str) -> str:
    sample = text[:65536]
    if sample:
        control = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\n\r\t\f\v") or ch == "\ufffd")
        if control / len(sample) > 0.05:
            raise BatError(f"{where} is not a text file (too many control or undecodable characters); "
                           "save it as UTF-8 plain text")
    return text


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise BatError(f"cannot read {path}: permission denied") from None
    except OSError as e:
        raise BatError(f"cannot read {path}: {e.strerror or e}") from None


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
    except (RecursionError, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError, UnicodeError, csv.Error) as e:
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
        return _table_texts(name, data, text_column)[0]
    _no_columns(name, text_column)
    return [d for d in (ln.translate(_NOT_LINE_ENDS).strip() for ln in lines(_decode(data, name))) if d]


def parse_table(name: str, data: bytes, text_column: str | None = None) -> tuple[list[str], str | None]:
    """The documents of a csv/tsv/jsonl/json file, exactly those :func:`parse_bytes` reads, and the column they came
    from: the one named, else the one found (a page says which it used; a wrong guess is otherwise silent)."""
    if Path(name).suffix.lower() not in TABULAR:
        raise BatError(f"{name}: not a table (.csv, .tsv, .jsonl or .json)")
    with _unreadable_as_bat_error(name):
        return _table_texts(name, data, text_column)


def _table_texts(name: str, data: bytes, text_column: str | None) -> tuple[list[str], str | None]:
    records, col, _ = _table(name, data, text_column)
    texts = [record_text(r, col) for r in records]
    if texts and not any(t.strip() for t in texts):
        raise BatError(f"{name}: column {col!r} holds no text in any of its {len(texts):,} rows; " + NAME_THE_COLUMN)
    return texts, col


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
        return csv_records(text, name, text_column, "\t" if suffix == ".tsv" else None)
    records = jsonl_records(text, name) if suffix in (".jsonl", ".ndjson") else json_records(text, name, text_column)
    return (records, *json_column(records, name, text_column))


def parse_labelled(name: str, data: bytes, text_column: str | None, label_column: str
                   ) -> tuple[list[str], list[str | None]]:
    """The documents of a table (exactly those :func:`parse_bytes` reads) and each one's value in ``label_column``
    (None where it is empty): categories for the downstream check. A BatError for files without columns."""
    texts, labels, _ = parse_labelled_table(name, data, text_column, label_column)
    return texts, labels


def parse_labelled_table(name: str, data: bytes, text_column: str | None, label_column: str
                         ) -> tuple[list[str], list[str | None], str | None]:
    """:func:`parse_labelled` and the text column it read (the one named, else the one found), as :func:`parse_table`
    says it for a table without labels."""
    if Path(name).suffix.lower() not in TABULAR:
        raise BatError(f"{name}: labels need a table (.csv, .tsv, .jsonl or .json) with a label column")
    with _unreadable_as_bat_error(name):
        records, col, columns = _table(name, data, text_column)
    if label_column not in columns:
        raise BatError(f"{name} has no column {label_column!r}; its columns are: {listed(columns)}")
    if label_column == col:
        raise BatError(f"the label column cannot be the text column ({col!r})")
    texts, labels = [], []
    for r in records:
        v = r.get(label_column) if isinstance(r, dict) else None
        texts.append(record_text(r, col))
        labels.append(str(v).strip() or None if v is not None else None)
    return texts, labels, col


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
        if len(members) > MAX_ZIP_MEMBERS:
            raise BatError(f"{where} holds {len(members):,} files; the limit is {MAX_ZIP_MEMBERS:,}")
        _check_unpacked(sum(i.file_size for i in members), len(data), where)  # what the archive says it holds
        docs, unpacked = [], 0
        for info in sorted(members, key=lambda i: i.filename):
            if info.flag_bits & 0x1:  # zipfile would say "<ZipInfo …> is encrypted, password required"
                raise BatError(f"{where}: {info.filename} is encrypted, and encrypted zips are not supported; unzip "
                               "it with its password and give the folder (or zip the files again without a password)")
            chunks = []
            try:
                with zf.open(info) as member:  # counted as it unpacks: the sizes an archive declares can lie
                    while chunk := member.read(1 << 20):
                        unpacked += len(chunk)
                        _check_unpacked(unpacked, len(data), where)
                        chunks.append(chunk)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, lzma.LZMAError, EOFError,
                    OSError) as e:  # lzma's error is no OSError (bz2's is)
                raise BatError(f"{where}: cannot read {info.filename} ({e})") from None
            docs.append(_decode(b"".join(chunks), f"{where}:{info.filename}").strip())
        return docs


def _check_unpacked(unpacked: int, packed: int, where: str) -> None:
    """Refuse an archive that unpacks to more than ``MAX_ZIP_BYTES``, or (beyond 10 MB) to more than ``MAX_ZIP_RATIO``
    times its own size."""
    if unpacked > MAX_ZIP_BYTES:
        raise BatError(f"{where} is too large once unpacked (over {MAX_ZIP_BYTES // 1024**2} MB of text, the limit); "
                       "give fewer documents")
    if unpacked > 10 * 1024**2 and unpacked > MAX_ZIP_RATIO * max(packed, 1):
        raise BatError(f"{where} unpacks to more than {MAX_ZIP_RATIO}× its packed size, which text does not do "
                       "(3-5×): refused as a zip bomb; if it is a real corpus, unzip it and give the folder")


def installed_name(source: str | Path) -> bool:
    """Whether ``source`` names an installed corpus: its name, with no file or folder of the user's by that name
    (which comes first: `bat fit skills` with a folder ./skills read the installed corpus instead)."""
    from . import datasets

    return str(source) in datasets.NAMES and not Path(str(source)).expanduser().exists()


def read_documents(source: str | Path, text_column: str | None = None) -> tuple[str, list[str]]:
    """(name, raw documents) for a path or an installed corpus name."""
    from . import datasets

    s = str(source)
    if not s.strip():
        raise BatError("no input given: name a file, a folder, a .zip or an installed corpus "
                       f"({', '.join(datasets.NAMES)})")
    path = Path(s).expanduser()
    if installed_name(s):
        _no_columns(f"the installed corpus {s}", text_column)
        return s, datasets.load(s)
    if not path.exists():
        known = ", ".join(datasets.NAMES)
        raise BatError(f"{s}: no such file or folder (installed corpora: {known})")
    if not path.is_dir() and not path.is_file():
        raise BatError(f"{s} is not a regular file or folder")
    if path.is_dir():
        _no_columns(f"folder {path}", text_column)
        files = _txt_files(path)
        if not files:
            raise BatError(f"folder {path} holds no .txt files; put one document per .txt file")
        return path.name, [_decode(read_bytes(p), str(p)).strip() for p in files]
    return path.stem, parse_bytes(path.name, read_bytes(path), text_column)


def _txt_files(root: Path) -> list[Path]:
    """The .txt files in a folder and its sub-folders, linked ones too (each real folder once: a link to a parent
    cannot loop). Only regular files: a FIFO, a link to /dev/zero or a broken or looping link is no document."""
    files, seen = [], {os.path.realpath(root)}
    for folder, subs, names in os.walk(root, followlinks=True):  # a looping link is among the names, no folder
        real = {os.path.realpath(os.path.join(folder, d)): d for d in sorted(subs, reverse=True)}  # first name wins
        subs[:] = [d for r, d in real.items() if r not in seen]
        seen.update(real)
        files += [Path(folder, n) for n in names if n.lower().endswith(".txt") and not n.startswith(".")
                  and os.path.isfile(os.path.join(folder, n))]
    return sorted(files)


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
            delimiter = "\t" if suffix == ".tsv" else sniff_delimiter(text)
            header = next(csv.reader(io.StringIO(text[:2_000_000], newline=""), delimiter=delimiter), [])
            return [h for h in header if h]
        records = jsonl_records(text, name) if suffix in (".jsonl", ".ndjson") else json_records(text, name, None)
    except (BatError, RecursionError, ValueError, UnicodeError, csv.Error):
        return []
    return list(dict.fromkeys(k for r in records[:1000] if isinstance(r, dict) for k in r))
