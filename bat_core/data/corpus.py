"""From user input to a :class:`Corpus`: reading (:mod:`bat_core.data.readers`), cleaning, boilerplate removal,
vectorising, splitting.

Accepted inputs: a ``.txt`` file (one document per non-empty line), a folder or ``.zip`` of ``.txt`` files (one
document per file), a ``.csv``/``.tsv``/``.jsonl``/``.json`` file with a text column (auto-detected, overridable), or
the name of an installed corpus (``demo``, see ``data.datasets``). Every problem a user can cause is raised as
:class:`BatError` with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from ..base.errors import BatError
from ..base.progress import Progress, report
from ..config import CorpusConfig
from .readers import read_documents

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
        hint = _unspaced_hint(train_docs)
        if "empty vocabulary" in msg:
            raise BatError("no words are left after preprocessing (stop words, tokens of at least "
                           f"{cfg.min_token_len} letters); is this English prose?" + hint) from None
        if "max_df corresponds to" in msg or "min_df" in msg:
            raise BatError(f"min_df={cfg.min_df} and max_df={cfg.max_df} leave no words for {len(train_docs)} training "
                           "documents; lower min_df or raise max_df" + hint) from None
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
            raise BatError(f"the {s} split is empty after preprocessing (none of its documents shares a word with "
                           f"the training documents' vocabulary); give more documents" + _unspaced_hint(docs))
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


def _unspaced_hint(docs: list[str]) -> str:
    """A hint when the text is mostly in scripts written without spaces between words (Chinese, Japanese, Thai, …):
    the tokenizer splits on non-word characters, so each run of such text becomes one long "word" that no other
    document shares, and no min_df/max_df setting helps."""
    sample = "".join(docs[:200])[:200_000]
    letters = sum(ch.isalpha() for ch in sample)
    unspaced = sum(ch.isalpha() and _is_unspaced_script(ch) for ch in sample)
    if letters and unspaced / letters > 0.3:
        return (" (most of this text is in a script written without spaces between words, such as Chinese, "
                "Japanese or Thai: split it into words first, e.g. with jieba or MeCab, with spaces between them)")
    return ""


def _is_unspaced_script(ch: str) -> bool:
    cp = ord(ch)
    return (0x3040 <= cp <= 0x30FF or 0x3400 <= cp <= 0x4DBF or 0x4E00 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF
            or 0x0E00 <= cp <= 0x0EFF or 0x1000 <= cp <= 0x109F or 0x1780 <= cp <= 0x17FF or 0x20000 <= cp <= 0x2FA1F)


def load_corpus(source: str | Path, cfg: CorpusConfig | None = None, progress: Progress | None = None) -> Corpus:
    """Read and build a corpus from a path or an installed corpus name (``demo``)."""
    cfg = cfg or CorpusConfig()
    name, docs = read_documents(source, cfg.text_column)
    return build_corpus(docs, cfg, name=name, progress=progress)


def vectorize(docs: list[str], cfg: CorpusConfig, vocabulary: list[str]) -> sp.csr_matrix:
    """Counts of new texts over a fixed vocabulary, tokenised as the corpus was (stop words, token rule): the input
    of a trained model's ``transform``, or an external NPMI reference."""
    return sp.csr_matrix(make_vectorizer(cfg, vocabulary).transform(docs), dtype=np.float32)


def vectorize_reference(docs: list[str], corpus: Corpus) -> sp.csr_matrix:
    """Count matrix of other texts (an external NPMI reference) over the corpus's vocabulary."""
    return vectorize(docs, corpus.config, corpus.vocab)
