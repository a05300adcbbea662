"""Tables as documents: the records of a CSV/TSV/JSON/JSONL file, which column holds the text, and the checks that
keep a malformed table from being read as something else (a runaway quote, prose saved as .csv, a wide or
duplicated header). Split from readers.py, which decodes files and dispatches on their kind.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

from ..base.errors import BatError

TEXT_COLUMN_NAMES = ("text", "body", "content", "document", "doc", "abstract", "article", "review", "message",
                     "sentence", "description", "summary")
# How to fix a table whose text column was not found, wherever the table was read (app, CLI or Python)
NAME_THE_COLUMN = ("name the column that holds the text (Text column on the app's Corpus page, --text-column in "
                   "the CLI, CorpusConfig(text_column=...) in Python)")


def lines(text: str) -> list[str]:
    """A file's lines, ended by \\n, \\r\\n or a lone \\r (old Mac files). Not ``str.splitlines()``: it also breaks at
    form feeds, \\x1c-\\x1e, U+0085 and U+2028/9, which would cut one document (or one JSON line) in pieces."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def listed(names: list, limit: int = 5) -> str:
    """Names for a one-line message (a header can name a million columns): a few, quoted and cut short."""
    shown = ", ".join(repr(n if len(n) <= 40 else n[:40] + "…") for n in map(str, names[:limit]))
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def pick_column(columns: list[str], rows: list[dict], text_column: str | None, where: str) -> str:
    if text_column is not None:
        if text_column not in columns:
            raise BatError(f"{where} has no column {text_column!r}; its columns are: {listed(columns)}")
        return text_column
    lower = {str(c).lower().strip(): c for c in reversed(columns)}  # the first spelling wins: "text" before "TEXT"
    for name in TEXT_COLUMN_NAMES:
        if name in lower:
            return lower[name]
    # fall back to the column whose values are longest on average, if they look like prose: tallied over the values
    # the rows hold, not columns × rows (a ragged file can name a million columns and fill few of them)
    sample = rows[:500]
    tally: dict = {c: [0, 0, 0] for c in columns}  # column → [string values, their total length, how many spaced]
    for r in sample:
        for c, v in r.items():
            if isinstance(v, str) and c in tally:
                tally[c] = [a + b for a, b in zip(tally[c], (1, len(v), " " in v))]
    prose = [c for c, (n_str, _, spaced) in tally.items() if n_str >= max(1, len(sample) // 2) and spaced >= n_str // 2]
    best = max(prose, key=lambda c: tally[c][1], default=None)  # the first of equals, in the columns' order
    if best is None or tally[best][1] / len(sample) < 10:
        raise BatError(f"{where}: could not find a text column among {listed(columns) or 'no columns'}; "
                       + NAME_THE_COLUMN)
    return best


def record_text(record: object, col: str | None) -> str:
    """A record's document text. A bare string is a document. A row whose ``col`` holds no usable text (missing,
    as in a ragged CSV row, null, NaN or nested data, never its repr) is an *empty* document, which
    ``build_corpus`` drops and counts in ``empty_dropped`` (the app shows the count). So is a record that is neither
    an object nor a string (a number or null in a JSON list): dropping it here would hide it from every count."""
    if isinstance(record, str):
        return record
    if not isinstance(record, dict) or col is None:
        return ""
    v = record.get(col)
    if v is None or isinstance(v, dict | list) or (isinstance(v, float) and v != v):
        return ""
    return v if isinstance(v, str) else str(v)


def csv_records(text: str, where: str, text_column: str | None, delimiter: str | None = None
                 ) -> tuple[list[dict], str, list[str]]:
    """(rows, the text column, all columns) of a CSV/TSV file."""
    csv.field_size_limit(1 << 30)
    if delimiter is None:
        delimiter = sniff_delimiter(text)

    def parse(quoting: int) -> tuple[list[str], list[dict]]:
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
            header, fields = next(reader, []), [f for f in reader if f]
        except csv.Error as e:
            raise BatError(f"{where} is not a valid CSV file: {e}") from None
        if text_column is None and _looks_like_prose(header, fields):
            raise BatError(f"{where} looks like plain text with commas, not a table (its first line reads as a "
                           "sentence cut at commas, not as column names); rename it to .txt for one document per "
                           "line, or add a header line with a text column and put text holding commas in quotes")
        # a row is a dict of its own fields: csv.DictReader's hold every column, a million under a wide header
        return header, [_row(header, f, delimiter, i, overflow) for i, f in enumerate(fields)]

    overflow: list[int] = []  # data rows with more fields than the header
    columns, rows = parse(csv.QUOTE_MINIMAL)
    if not columns or not rows:
        raise BatError(f"{where} has no rows; a CSV needs a header line and one row per document")
    twice = [c for c, n in Counter(columns).items() if n > 1]
    if twice:  # a row keeps only the last of same-named fields: which one is the text would be a silent guess
        raise BatError(f"{where}: the header names column{'s' if len(twice) > 1 else ''} {listed(twice)} more "
                       "than once; give every column its own name")
    runaway = _runaway_quote_row(rows, columns, delimiter)
    if runaway is not None:
        if delimiter != "\t":
            raise BatError(f"{where}: an unbalanced quote (\") near data row {runaway + 1} swallows the rows after it "
                           "into one field; fix the quoting or save as .tsv")
        overflow.clear()
        columns, rows = parse(csv.QUOTE_NONE)  # tab-separated files rarely mean quotes as quoting
    col = pick_column(columns, rows, text_column, where)
    if overflow and col != columns[-1]:  # the text was cut at its unquoted delimiters, and the pieces went elsewhere
        raise BatError(f"{where}: {len(overflow):,} rows have more fields than the header (e.g. data row "
                       f"{overflow[0] + 1}), so the text column {col!r} holds unquoted {delimiter!r}; put its values "
                       "in quotes")
    return rows, col, columns


def _row(header: list[str], fields: list[str], delimiter: str, i: int, overflow: list[int]) -> dict:
    """One data row as {column: value}. Fields beyond the header (trailing empty ones aside) are the last column's
    text cut at unquoted delimiters: joined back into it, and the row noted (csv.DictReader dropped them silently)."""
    n = len(header)
    while len(fields) > n and not fields[-1].strip():
        fields = fields[:-1]
    row = dict(zip(header, fields))
    if len(fields) > n and n:
        row[header[-1]] = delimiter.join(fields[n - 1:])
        overflow.append(i)
    return row


def sniff_delimiter(text: str) -> str:
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


def _looks_like_prose(header: list[str], rows: list[list[str]]) -> bool:
    """Prose with commas read as a table: the "header" is a sentence cut at its commas (most names of 2+ words, none a
    known text column), and either it ends like a sentence (. ! ?), which a header does not, or the lines' field
    counts scatter (≥ 3 different counts, most lines unlike the header). A table's short rows (trailing empty fields
    left out) do not count against it."""
    width = lambda f: len(f) - next((i for i, v in enumerate(reversed(f)) if v.strip()), len(f))
    names = header[:width(header)]
    if len(rows) < 3 or len(names) < 2 or any(h.strip().lower() in TEXT_COLUMN_NAMES for h in names):
        return False
    if sum(len(h.split()) > 1 for h in names) * 2 <= len(names):
        return False
    counts = [width(f) for f in rows[:1000]]
    scattered = len(set(counts)) >= 3 and sum(c == len(names) for c in counts) * 2 < len(counts)
    return scattered or names[-1].rstrip().endswith((".", "!", "?"))


def json_column(records: list, where: str, text_column: str | None) -> tuple[str | None, list[str]]:
    """(the text column, all columns) of JSON records; no column when the records are bare strings (a null or
    number among them is an empty document, counted as dropped, as among objects)."""
    dicts = [r for r in records if isinstance(r, dict)]
    if not dicts and any(isinstance(r, str) for r in records):
        return None, []
    if not dicts:
        raise BatError(f"{where}: expected JSON objects (one per document) or strings")
    columns = list(dict.fromkeys(k for r in dicts[:1000] for k in r))
    # bare strings among the objects are documents too, in their place
    return pick_column(columns, dicts, text_column, where), columns


def jsonl_records(text: str, where: str) -> list:
    records = []
    for i, line in enumerate(lines(text), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise BatError(f"{where}, line {i}: not valid JSON ({e.msg}: column {e.colno}); "
                           "a .jsonl file needs one JSON object per line") from None
    return records


def json_records(text: str, where: str, text_column: str | None) -> list:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if text.lstrip().startswith("{") and "\n" in text.strip():  # maybe it is really JSON lines
            return jsonl_records(text, where)
        raise BatError(f"{where} is not valid JSON ({e.msg}: line {e.lineno}, column {e.colno})") from None
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
