"""Corpus ingestion: every input format, cleaning, splits, hashing, and the errors users can cause."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from bat_core.base.errors import BatError
from bat_core.config import CorpusConfig
from bat_core.data.cleaning import remove_boilerplate
from bat_core.data.corpus import build_corpus, load_corpus
from bat_core.data.readers import parse_bytes, parse_labelled_table, parse_table, read_documents

DOCS = [
    "The spacecraft reached orbit around Mars after a long journey through space.",
    "Hockey players celebrated the championship win with their loyal fans.",
    "The orbit of the probe was adjusted by engineers at mission control.",
    "Fans of the hockey team filled the arena for the championship final.",
    "Astronauts aboard the station repaired the solar panels during a spacewalk.",
    "The goalie blocked every shot and the team won the hockey game.",
    "Scientists studied images of the planet surface sent by the rover.",
    "The coach praised the players after the team won another game.",
    "Launch of the rocket was delayed because of strong winds at the pad.",
    "The league announced the hockey playoff schedule for the season.",
    "A telescope captured light from a distant galaxy in deep space.",
    "Players trained on the ice before the championship series began.",
]


def test_txt_one_document_per_line(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("\n".join(DOCS[:5]) + "\n\n   \n" + "\n".join(DOCS[5:]), encoding="utf-8")
    name, docs = read_documents(p)
    assert name == "c" and docs == DOCS


def test_folder_and_zip_of_txt(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, d in enumerate(DOCS):
        (folder / f"{i:02d}.txt").write_text(d + "\nsecond line of the same document", encoding="utf-8")
    _, docs = read_documents(folder)
    assert len(docs) == len(DOCS) and docs[0].startswith(DOCS[0]) and "second line" in docs[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, d in enumerate(DOCS):
            zf.writestr(f"docs/{i:02d}.txt", d)
        zf.writestr("__MACOSX/._junk.txt", b"\x00\x01")
    assert parse_bytes("c.zip", buf.getvalue()) == DOCS


def test_csv_autodetects_text_column_and_override():
    rows = "id,title,body\n" + "\n".join(f'{i},"t{i}","{d}"' for i, d in enumerate(DOCS))
    assert parse_bytes("c.csv", rows.encode()) == DOCS
    assert parse_bytes("c.csv", rows.encode(), text_column="title")[0] == "t0"
    tsv = "label\tsentence\n" + "\n".join(f"x\t{d}" for d in DOCS)
    assert parse_bytes("c.tsv", tsv.encode()) == DOCS
    # the same documents, and the column they came from (the Corpus page says which it read)
    assert parse_table("c.csv", rows.encode()) == (DOCS, "body")
    assert parse_table("c.csv", rows.encode(), text_column="title")[1] == "title"
    with pytest.raises(BatError, match="not a table"):
        parse_table("c.txt", b"one\ntwo\n")


def test_a_text_column_for_a_source_without_columns_is_an_error(tmp_path):
    """--text-column on a .txt, a zip or a folder used to be ignored: every line came back as a document."""
    txt = "\n".join(DOCS).encode()
    with pytest.raises(BatError, match="no columns.*'body'"):
        parse_bytes("c.txt", txt, text_column="body")
    assert parse_bytes("c.txt", txt) == DOCS
    (tmp_path / "a.txt").write_text(DOCS[0])
    with pytest.raises(BatError, match="folder .*no columns"):
        read_documents(tmp_path, text_column="body")
    with pytest.raises(BatError, match="installed corpus demo has no columns"):
        read_documents("demo", text_column="body")


def test_csv_guesses_longest_prose_column():
    rows = "a,b\n" + "\n".join(f'{i},"{d}"' for i, d in enumerate(DOCS))
    assert parse_bytes("c.csv", rows.encode()) == DOCS


def test_jsonl_and_json():
    jl = "\n".join(json.dumps({"id": i, "text": d}) for i, d in enumerate(DOCS))
    assert parse_bytes("c.jsonl", jl.encode()) == DOCS
    assert parse_bytes("c.json", json.dumps([{"content": d} for d in DOCS]).encode()) == DOCS
    assert parse_bytes("c.json", json.dumps(DOCS).encode()) == DOCS
    assert parse_bytes("c.json", json.dumps({"data": [{"text": d} for d in DOCS]}).encode()) == DOCS


def test_mixed_json_records_keep_every_document():
    assert parse_bytes("m.json", json.dumps(["a string doc", {"text": "an object doc"}, 42]).encode()) == \
        ["a string doc", "an object doc", ""]  # a record with no text stays, empty: counted as dropped, not lost
    assert parse_bytes("m.json", json.dumps([{"text": "lower"}, {"TEXT": "upper", "text": "both"}]).encode()) == \
        ["lower", "both"]


def test_label_column_pairs_each_document_with_its_label():
    from bat_core.data.readers import parse_labelled

    csv_bytes = b'id,text,cat\n1,"first document here",a\n2,,b\n3,"third one, with a comma",\n4,fourth text,c\n'
    texts, labels = parse_labelled("x.csv", csv_bytes, None, "cat")
    # the same documents as without labels (an empty text stays: build_corpus drops it, and its label with it)
    assert texts == parse_bytes("x.csv", csv_bytes) == ["first document here", "", "third one, with a comma",
                                                        "fourth text"]
    assert labels == ["a", "b", None, "c"]  # an empty label is None
    assert parse_labelled_table("x.csv", csv_bytes, None, "cat")[2] == "text"  # the column read, for the page
    jsonl = b'{"body": "alpha beta", "y": 1}\n{"body": "gamma delta"}\n{"y": 3}\n'
    # a record without the text field is an empty document (dropped and counted by build_corpus)
    assert parse_labelled("x.jsonl", jsonl, "body", "y") == (["alpha beta", "gamma delta", ""], ["1", None, "3"])
    mixed = b'[{"text": "one doc", "k": "p"}, "a bare string document", {"text": "two doc", "k": "q"}]'
    assert parse_labelled("x.json", mixed, None, "k") == (["one doc", "a bare string document", "two doc"],
                                                          ["p", None, "q"])
    with pytest.raises(BatError, match="no column 'nope'"):
        parse_labelled("x.csv", csv_bytes, None, "nope")
    with pytest.raises(BatError, match="cannot be the text column"):
        parse_labelled("x.csv", csv_bytes, None, "text")
    with pytest.raises(BatError, match="labels need a table"):
        parse_labelled("x.txt", b"one\ntwo\n", None, "cat")
    with pytest.raises(BatError, match="not valid JSON"):
        parse_labelled("x.json", b"{broken", None, "cat")


def test_legacy_encodings_decode():
    latin = "\n".join(DOCS).replace("Mars", "Mårs").encode("cp1252")
    assert "Mårs" in parse_bytes("c.txt", latin)[0]
    utf16 = "\n".join(DOCS).encode("utf-16")
    assert parse_bytes("c.txt", utf16) == DOCS
    assert parse_bytes("c.txt", "\n".join(DOCS).encode("utf-16-le")) == DOCS  # no BOM
    assert parse_bytes("c.txt", "\n".join(DOCS).encode("utf-16-be")) == DOCS
    stray_nul = ("\n".join(DOCS).replace("Mars", "Ma\x00rs")).encode()
    assert len(parse_bytes("c.txt", stray_nul)) == len(DOCS)  # one stray NUL is not "binary"


@pytest.mark.parametrize(
    "name,data,needle",
    [
        ("c.txt", bytes(range(256)) * 50, "not a text file"),
        ("c.csv", b"id,num\n1,2\n3,4\n", "could not find a text column"),
        ("c.csv", b"", "no rows"),
        ("c.jsonl", b'{"text": "ok"}\n{broken\n', "line 2"),
        ("c.json", b"[1, 2", "not valid JSON"),
        ("c.zip", b"PK\x03\x04 not really", "not a valid zip"),
        ("c.pdf", b"%PDF-1.4", "unsupported file type"),
        ("c.csv", b"text,text,label\nsome words here,other words,a\n", "names column 'text' more than once"),
    ],
)
def test_bad_files_raise_clear_errors(name, data, needle):
    with pytest.raises(BatError, match=needle):
        parse_bytes(name, data)


def test_hostile_files_become_clear_errors():
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(BatError, match="c.json"):
        parse_bytes("c.json", deep)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", "hello world " * 1000)
    data = bytearray(buf.getvalue())
    start = data.find(b"a.txt") + 5  # corrupt the compressed payload of the member
    data[start + 10:start + 60] = b"\xff" * 50
    with pytest.raises(BatError):
        parse_bytes("c.zip", bytes(data))


def test_unbalanced_quote_does_not_swallow_rows():
    q = chr(34)
    rows = ["id\ttext"] + [f'{i}\t{q if i == 3 else ""}document number {i} about stock markets' for i in range(20)]
    docs = parse_bytes("q.tsv", "\n".join(rows).encode())
    assert len(docs) == 20 and docs[4] == "document number 4 about stock markets"
    csv_rows = ["id,text"] + [f'{i},{q if i == 3 else ""}document number {i} about stock markets' for i in range(20)]
    with pytest.raises(BatError, match="unbalanced quote"):
        parse_bytes("q.csv", "\n".join(csv_rows).encode())
    # a legitimate multi-line quoted field stays one document
    ok = 'id,text\n1,"first line\nsecond line of the same text"\n2,another document here\n'
    assert parse_bytes("ok.csv", ok.encode()) == ["first line\nsecond line of the same text", "another document here"]


def test_special_files_are_refused(tmp_path):
    import os

    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(BatError, match="not a regular file"):
        read_documents(fifo)


def test_zip_without_txt(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.csv", "x")
    with pytest.raises(BatError, match="no .txt files"):
        parse_bytes("c.zip", buf.getvalue())


def test_missing_path_and_empty_corpus(tmp_path):
    with pytest.raises(BatError, match="no such file"):
        load_corpus(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    with pytest.raises(BatError, match="at least"):
        load_corpus(tmp_path / "empty.txt")
    with pytest.raises(BatError, match="column 'nope'"):
        parse_bytes("c.csv", b"text\nhello world\n", text_column="nope")


def test_too_little_left_says_where_the_documents_went():
    """The error names what cleaning took, where the cause usually is: a file of one repeated line said "only 1
    non-empty distinct documents", and documents sharing their sentences blamed stop words or min_df."""
    with pytest.raises(BatError, match=r"only 1 distinct non-empty document left.*Of 100 documents read: 99 copies"):
        build_corpus(["the same line about cats and dogs"] * 100)
    shared = [f"Coffee with hot milk and sugar is a drink people enjoy, number {i}" for i in range(40)]
    with pytest.raises(BatError, match=r"boilerplate removal took [\d,]+ words from 40 documents.*turn it off"):
        build_corpus(shared)


def test_json_errors_say_where():
    with pytest.raises(BatError, match=r"Unterminated string starting at: line 1, column 11"):
        parse_bytes("c.json", b'[{"text": "oops')
    with pytest.raises(BatError, match=r"could not find a text column.*Text column on the app's Corpus page"):
        parse_bytes("c.csv", b"id,num\n1,2\n3,4\n")


def test_non_english_or_numeric_text_has_no_vocabulary():
    with pytest.raises(BatError, match="no words"):
        build_corpus([f"{i} {i * 7} {i * 13}" for i in range(30)], CorpusConfig(min_df=1))


def test_build_corpus_splits_vocab_and_hash():
    docs = DOCS * 3 + [d + " extra words here" for d in DOCS]  # duplicates are dropped
    c = build_corpus(docs, CorpusConfig(min_df=1, max_df=1.0, vocab_size=50), name="toy")
    assert c.stats["duplicates_dropped"] == len(DOCS) * 2
    assert c.n_docs == 24 and c.counts.shape == (24, len(c.vocab)) and len(c.vocab) <= 50
    all_idx = np.concatenate([c.splits[s] for s in ("train", "dev", "test")])
    assert sorted(all_idx.tolist()) == list(range(c.n_docs))  # a partition
    assert all(len(w) >= 3 and w.isalpha() and w == w.lower() for w in c.vocab)
    assert "the" not in c.vocab  # stop words removed
    assert (c.counts.sum(axis=1) > 0).all()
    again = build_corpus(docs, CorpusConfig(min_df=1, max_df=1.0, vocab_size=50), name="toy")
    assert again.hash == c.hash and np.array_equal(again.splits["test"], c.splits["test"])
    other = build_corpus(docs, CorpusConfig(min_df=1, max_df=1.0, vocab_size=40), name="toy")
    assert other.hash != c.hash


def test_extra_stop_words():
    docs = DOCS + [d + " extra words here" for d in DOCS]
    c = build_corpus(docs, CorpusConfig(min_df=1, max_df=1.0, extra_stop_words=("hockey", "Team")))
    assert "hockey" not in c.vocab and "team" not in c.vocab


def test_boilerplate_removal_drops_repeated_runs():
    share = "Share this story on Facebook Twitter Google+ Whatsapp Tumblr and Reddit now"
    docs = [f"{d} {share}" if i % 2 == 0 else d for i, d in enumerate(DOCS * 2)]
    cleaned, stats = remove_boilerplate(docs, min_frac=0.1, min_docs=3)
    assert stats["boilerplate_docs_touched"] == 12
    assert all("Whatsapp" not in d for d in cleaned)
    assert cleaned[1] == docs[1]  # untouched documents stay byte-identical


def test_demo_corpus(demo_corpus):
    c = demo_corpus
    assert c.name == "demo" and c.n_docs > 250 and c.vocab_size == 2000
    assert {"said", "government", "australia"} & set(c.vocab)


def test_settings_outside_what_the_tools_accept_are_clear_errors():
    from bat_core.config import DistillConfig, StudentConfig

    for bad, needle in [(dict(max_df=2.5), "max_df must be"), (dict(min_df=2.5), "min_df must be"),
                        (dict(split_seed=-1), "split seed")]:
        with pytest.raises(BatError, match=needle):
            CorpusConfig(**bad)
    CorpusConfig(max_df=50, min_df=2)  # whole numbers of documents are fine
    for bad, needle in [(dict(emb_dim=0), "emb_dim"), (dict(patience=0), "patience")]:
        with pytest.raises(BatError, match=needle):
            StudentConfig(**bad)
    with pytest.raises(BatError, match="temperature"):
        DistillConfig(lam=0.5, temperature=float("inf"))
    with pytest.raises(BatError, match="no input given"):
        read_documents("")


def test_text_without_spaces_gets_a_segmentation_hint():
    docs = ["今天天气很好我们去公园散步" + str(i) for i in range(60)]
    with pytest.raises(BatError, match="written without spaces"):
        build_corpus(docs, CorpusConfig())
    with pytest.raises(BatError) as english:  # English that is all stop words gets no such hint
        build_corpus(["the and of to"] * 60, CorpusConfig())
    assert "without spaces" not in str(english.value)


def test_nested_or_nan_text_values_are_not_documents():
    recs = [{"text": f"real words about things {i}"} for i in range(3)]
    recs += [{"text": {"inner": "x"}}, {"text": ["a", "b"]}, {"text": float("nan")}]
    data = "\n".join(json.dumps(r) for r in recs).encode()
    assert parse_bytes("a.jsonl", data) == [f"real words about things {i}" for i in range(3)] + ["", "", ""]


def test_rows_without_text_are_counted_as_empty_documents():
    """A ragged CSV row (no text field) or a null used to vanish unseen; the corpus stats must count it."""
    words = "markets prices trade football league goals election voters senate rain storm winds".split()
    rng = np.random.default_rng(0)
    good = [" ".join(rng.choice(words, 8)) for _ in range(40)]
    data = ("id,text\n" + "\n".join(f'{i},"{t}"' for i, t in enumerate(good)) + "\n41\n42\n").encode()
    docs = parse_bytes("r.csv", data)
    assert docs[:40] == good and docs[40:] == ["", ""]
    assert build_corpus(docs, CorpusConfig(min_df=1)).stats["empty_dropped"] == 2
    with pytest.raises(BatError, match="column 'text' holds no text in any of its 3 rows"):
        parse_bytes("n.jsonl", b'{"text": null, "x": "a long other field"}\n{"text": ""}\n{"text": []}\n')


def test_a_few_stray_bytes_do_not_turn_utf8_into_windows_1252():
    """One stray cp1252 quote made the whole file decode as cp1252: "München" became "MÃ¼nchen"."""
    text = "Straße in München\nCafé crème\n" + "\n".join(DOCS) + "\n"
    docs = parse_bytes("x.txt", text.encode() + b"\x93quoted\x94\n")
    assert docs[:-1] == text.split("\n")[:-1] and "quoted" in docs[-1]
    legacy = "Straße in München\nCafé crème\n".encode("cp1252")  # a real legacy file still reads as one
    assert parse_bytes("x.txt", legacy) == ["Straße in München", "Café crème"]


def test_a_local_folder_named_like_an_installed_corpus_is_read(tmp_path, monkeypatch):
    """`bat fit skills` with a folder ./skills trained on the installed corpus of that name instead."""
    (tmp_path / "demo").mkdir()
    for i, d in enumerate(DOCS):
        (tmp_path / "demo" / f"{i}.txt").write_text(d)
    monkeypatch.chdir(tmp_path)
    name, docs = read_documents("demo")
    assert name == "demo" and sorted(docs) == sorted(DOCS)


def test_a_zip_that_unpacks_far_beyond_text_is_refused(tmp_path):
    """A 1 MB zip of one 200 MB member was read (5.8 GB of memory); the size cap alone (then 2 GiB) allowed it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.txt", b"the same sentence again and again. " * 400_000)  # 14 MB, packs ~1000x
    with pytest.raises(BatError, match="zip bomb"):
        parse_bytes("b.zip", buf.getvalue())


def test_invisible_format_characters_do_not_split_words():
    """A zero-width space or a byte-order mark inside a word made two fake words of the vocabulary ("astro", "naut")."""
    from bat_core.data.corpus import vectorize

    docs = [f"{d} {tag}" for tag in ("alpha", "beta", "gamma", "delta") for d in DOCS]  # distinct documents
    clean = build_corpus(docs, CorpusConfig(min_df=1, remove_boilerplate=False))
    marked = [d.replace("orbit", "or\u200bbit").replace("space", "spa\ufeffce") for d in docs]
    corpus = build_corpus(marked, CorpusConfig(min_df=1, remove_boilerplate=False))
    assert corpus.vocab == clean.vocab
    counts = vectorize(["an or\u00adbit in spa\u200dce"], corpus.config, corpus.vocab)  # new texts alike
    assert {corpus.vocab[i] for i in counts.indices} == {"orbit", "space"}
