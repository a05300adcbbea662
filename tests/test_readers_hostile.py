"""Hostile and odd input to the readers: each case once hung, crashed with an internal error, lost documents without
a word, or said something misleading. Every problem a user can fix must be one short BatError line."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile

import pytest

from bat_core.base.errors import BatError
from bat_core.config import CorpusConfig
from bat_core.data.corpus import build_corpus
from bat_core.data.readers import parse_bytes, parse_labelled, read_documents

WORDS = "markets prices trade football league goals election voters senate rain storm winds".split()


def _one_line(e: pytest.ExceptionInfo, limit: int = 400) -> str:
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < limit, msg[:500]
    return msg


# ------------------------------------------------------------------------------------------------------ columns
def test_a_wide_header_is_checked_in_linear_time():
    """The duplicate-name check was quadratic: 100k columns took minutes, a million hours."""
    header = ",".join(f"c{i}" for i in range(40_000))
    start = time.perf_counter()
    with pytest.raises(BatError, match="could not find a text column") as e:
        parse_bytes("wide.csv", (header + "\n" + ",".join("1" * 40_000) + "\n").encode())
    assert time.perf_counter() - start < 5
    assert "and 39,995 more" in _one_line(e)


def test_many_duplicate_column_names_make_a_short_message():
    header = ",".join(f"col{i % 2000}" for i in range(4000)) + ",text"
    with pytest.raises(BatError, match="more than once") as e:
        parse_bytes("dup.csv", (header + "\n" + ",".join("x" * 4001) + "\n").encode())
    msg = _one_line(e)
    assert "'col0', 'col1', 'col2', 'col3', 'col4' and 1,995 more" in msg


def test_a_wide_header_over_short_rows_stays_small_and_fast():
    """csv.DictReader gave every short row a dict of all 100k columns (and the column guess looked at each)."""
    header = ",".join(f"c{i}" for i in range(100_000))
    start = time.perf_counter()
    with pytest.raises(BatError, match="could not find a text column") as e:
        parse_bytes("ragged.csv", (header + "\n" + "x\n" * 300).encode())
    assert time.perf_counter() - start < 5
    _one_line(e)


def test_long_or_multiline_column_names_stay_on_one_line():
    header = '"a\nb",' + "z" * 5000
    with pytest.raises(BatError, match="no column 'nope'") as e:
        parse_bytes("odd.csv", f"{header}\n1,2\n".encode(), text_column="nope")
    assert "zzz…" in _one_line(e)
    with pytest.raises(BatError, match="no column 'nope'") as e:
        parse_labelled("odd.csv", f"{header},text\n1,2,some words here\n".encode(), None, "nope")
    _one_line(e)


# ------------------------------------------------------------------------------------------------------ archives
def _zip(members: dict[str, str], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_corrupt_lzma_zip_is_a_clear_error():
    data = bytearray(_zip({f"d{i:02d}.txt": f"document {i} about markets and prices " * 20 for i in range(60)},
                          zipfile.ZIP_LZMA))
    data[58:98] = bytes(b ^ 0xFF for b in data[58:98])
    with pytest.raises(BatError, match="c.zip") as e:
        parse_bytes("c.zip", bytes(data))
    _one_line(e)


def test_encrypted_zip_names_the_member_and_says_what_to_do():
    data = bytearray(_zip({"docs/a.txt": "hello world " * 50}))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" bit in both headers
        at = data.find(sig) + flag_at
        data[at] |= 0x1
    with pytest.raises(BatError, match="docs/a.txt is encrypted.*not supported.*unzip") as e:
        parse_bytes("c.zip", bytes(data))
    assert "ZipInfo" not in _one_line(e)


# ------------------------------------------------------------------------------------------------------ JSON
def test_json_records_that_are_not_objects_or_strings_are_counted():
    good = [{"text": " ".join(WORDS[j % 12] for j in range(i, i + 8))} for i in range(30)]
    data = json.dumps([*good, 42, None, [1, 2], True]).encode()
    docs = parse_bytes("m.json", data)
    assert len(docs) == 34 and docs[30:] == ["", "", "", ""]  # in place, as empty documents
    stats = build_corpus(docs, CorpusConfig(min_df=1)).stats
    assert stats["documents_read"] == 34 and stats["empty_dropped"] == 4
    texts, labels = parse_labelled("m.jsonl", b'{"text": "a b c", "y": "p"}\n7\n{"text": "d e", "y": "q"}\n', None,
                                   "y")
    assert texts == ["a b c", "", "d e"] and labels == ["p", None, "q"]


def test_jsonl_lines_may_hold_unicode_line_separators():
    lines = [json.dumps({"text": f"part one\u2028part two {i}"}, ensure_ascii=False) for i in range(3)]
    docs = parse_bytes("u.jsonl", "\n".join(lines).encode())
    assert docs == [f"part one\u2028part two {i}" for i in range(3)]


# ------------------------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("enc", ["utf-32", "utf-32-le", "utf-32-be"])
def test_utf32_with_a_bom_decodes(enc):
    text = "first document here\nsecond document, with ümlauts\n"
    data = text.encode(enc) if enc == "utf-32" else ("\ufeff" + text).encode(enc)
    assert parse_bytes("c.txt", data) == ["first document here", "second document, with ümlauts"]


@pytest.mark.parametrize("data", [b"\xfe\xff" + b"\x00\x01" * 500,  # UTF-16-BE control characters
                                  b"\xff\xfe" + bytes(x for i in range(2000) for x in (i % 32, 0)),  # the same, LE
                                  b"\xff\xfe" + b"\x00" * 1000])  # a UTF-32 BOM, then NULs
def test_junk_after_a_bom_is_not_a_text_file(data):
    with pytest.raises(BatError, match="not a text file") as e:
        parse_bytes("c.txt", data)
    _one_line(e)


def test_utf16_with_a_bom_still_decodes():
    assert parse_bytes("c.txt", "one document\ntwo documents\n".encode("utf-16")) == ["one document", "two documents"]


# ------------------------------------------------------------------------------------------------------ .txt lines
def test_txt_lines_end_only_at_line_ends():
    text = ("one\x0cdocument\x0bhere\n" "second\x1cdocument\x1dwith\x1eodd\x85breaks\u2028and\u2029more\r\n"
            "third document\rfourth document, from an old Mac\r\n\n")
    assert parse_bytes("c.txt", text.encode()) == ["one document here", "second document with odd breaks and more",
                                                   "third document", "fourth document, from an old Mac"]


# ------------------------------------------------------------------------------------------------------ folders
def test_linked_folders_are_read_once_and_special_files_skipped(tmp_path):
    outside = tmp_path / "outside"
    (outside / "deeper").mkdir(parents=True)
    (outside / "b.txt").write_text("document in a linked folder")
    (outside / "deeper" / "c.txt").write_text("document deeper in a linked folder")
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.txt").write_text("document at the top")
    os.symlink(outside, root / "linked")
    os.symlink(outside, root / "linked_again")  # the same real folder: read once
    os.symlink(root, root / "loop")  # a link to the folder itself
    os.symlink(root / "self.txt", root / "self.txt")  # a link to itself
    os.symlink("/dev/zero", root / "zero.txt")
    os.mkfifo(root / "pipe.txt")
    os.symlink(tmp_path / "gone", root / "broken.txt")
    name, docs = read_documents(root)
    assert name == "in" and sorted(docs) == ["document at the top", "document deeper in a linked folder",
                                             "document in a linked folder"]


# ------------------------------------------------------------------------------------------------------ prose as csv
def test_prose_with_commas_saved_as_csv_is_an_error():
    prose = ["The market fell sharply today, and traders were nervous about the news",
             "Rain is expected tomorrow",
             "In the league, the home team won, the visitors lost, and fans cheered",
             "Voters went to the polls, despite the storm",
             "Prices of oil, gas, coal, and wheat all rose, while gold fell",
             "The senate met again, briefly"]
    with pytest.raises(BatError, match="looks like plain text with commas.*rename it to .txt") as e:
        parse_bytes("prose.csv", "\n".join(prose).encode())
    _one_line(e)
    assert len(parse_bytes("prose.txt", "\n".join(prose).encode())) == 6


def test_tables_are_not_taken_for_prose():
    quoted = "Review text,Star rating\n" + "\n".join(f'"Good, cheap, and fast {i}",{i % 5}' for i in range(20))
    assert parse_bytes("t.csv", quoted.encode())[3] == "Good, cheap, and fast 3"
    # a few short rows in a table of multi-word column names are empty documents, not prose
    rows = ["Customer name,Review text"] + [f"n{i},some words about item {i}" for i in range(10)] + ["x", "y"]
    docs = parse_bytes("r.csv", "\n".join(rows).encode())
    assert len(docs) == 12 and docs[-2:] == ["", ""]


@pytest.mark.parametrize("table", [
    "Review Text,Star Rating,\nGreat product really nice,5\nBad thing it broke at once,1\nOk fine for the price,3\n"
    "Loved it a lot really,5\n",  # the header ends with a comma
    "Review Text,Star Rating\nGreat product really nice,5,\nBad thing it broke at once,1,\nOk fine for the price,3,\n"
    "Loved it a lot really,5,\r\n",  # every row ends with one
    "Review Text,Product Name,Star Rating\nGreat product really nice indeed,Widget\n"
    "Bad thing it broke at once,Gadget,1\nOk fine for the price I paid,Thing\n"
    "nice and shiny and new,Foo\n",  # empty trailing fields left out
])
def test_tables_with_uneven_rows_are_not_taken_for_prose(table):
    """Found in review: these read fine before the prose check and must still."""
    docs = parse_bytes("t.csv", table.encode())
    assert len(docs) == 4 and docs[0].startswith("Great product")


def test_a_null_among_json_strings_is_an_empty_document():
    assert parse_bytes("a.json", b'["doc one", null, 3, "doc two"]') == ["doc one", "", "", "doc two"]
    with pytest.raises(BatError, match="expected JSON objects"):
        parse_bytes("a.json", b"[1, 2, null]")


def test_prose_with_the_same_commas_on_every_line_is_not_a_table():
    """Found in the app: a first line that ends like a sentence is no header, even when every line has as many commas
    (each document was cut to one comma-separated piece, or said 'no words left')."""
    same = "\n".join(f"The river rose, slowly, over the valley, and the farmer {i} watched, worried, from the hill."
                     for i in range(40))
    with pytest.raises(BatError, match="plain text with commas"):
        parse_bytes("p.csv", same.encode())
    assert parse_bytes("p.csv", same.encode(), text_column="The river rose")  # a column named: read as asked


def test_unquoted_commas_in_the_last_column_are_its_text_and_elsewhere_an_error():
    """csv.DictReader dropped the fields beyond the header: text cut at its first unquoted comma, without a word."""
    last = b"id,text\n1,hello there, my friend, how are you\n2,just one piece of text here\n3,another, with commas\n"
    assert parse_bytes("a.csv", last) == ["hello there, my friend, how are you", "just one piece of text here",
                                          "another, with commas"]
    first = b"text,label\nhello there, my friend,a\njust one piece of text here,b\nanother one, with commas,a\n"
    with pytest.raises(BatError, match=r"2 rows have more fields than the header \(e.g. data row 1\).*in quotes"):
        parse_bytes("b.csv", first)
    # trailing empty fields are no overflow
    assert parse_bytes("c.csv", b"Review Text,Stars\nGreat product really nice,5,\nBad thing,1,,\n") == \
        ["Great product really nice", "Bad thing"]
