"""From user input to a :class:`Corpus`: reading (``data.readers``), cleaning (``data.cleaning``: boilerplate and
copies), then here: the vocabulary (fitted on the training split), the counts, the splits and the content hash.

Accepted inputs: a ``.txt`` file (one document per non-empty line), a folder or ``.zip`` of ``.txt`` files (one
document per file), a ``.csv``/``.tsv``/``.jsonl``/``.json`` file with a text column (auto-detected, overridable), or
the name of an installed corpus (``demo``, see ``data.datasets``). Every problem a user can cause is raised as
:class:`BatError` with a message that says what to do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from ..base.errors import BatError
from ..base.progress import Progress, report
from ..config import CorpusConfig
from .cleaning import drop_duplicates, remove_boilerplate, strip_format_chars
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


def _where_they_went(stats: dict) -> str:
    """What cleaning took from the documents read, for an error that says too little is left: the cause is often
    there (a file of one repeated line, documents that share their passages), not in the setting the error names."""
    parts = []
    if stats.get("empty_dropped"):
        parts.append(f"{stats['empty_dropped']:,} empty")
    if stats.get("duplicates_dropped"):
        parts.append(f"{stats['duplicates_dropped']:,} copies of another document")
    if stats.get("boilerplate_words_removed"):
        parts.append(f"boilerplate removal took {stats['boilerplate_words_removed']:,} words from "
                     f"{stats['boilerplate_docs_touched']:,} documents (lines and 8-word runs found in at least "
                     f"{stats['boilerplate_threshold_docs']:,} documents; turn it off if your documents share "
                     "passages on purpose)")
    return f" Of {stats['documents_read']:,} documents read: {'; '.join(parts)}." if parts else ""


def build_corpus(docs: list[str], cfg: CorpusConfig | None = None, name: str = "corpus",
                 progress: Progress | None = None) -> Corpus:
    """Clean, vectorise and split raw documents. The vocabulary is fitted on the training split only."""
    cfg = cfg or CorpusConfig()
    stats: dict = {"documents_read": len(docs)}
    report(progress, "corpus", 0, 3, "cleaning")
    docs = [strip_format_chars(d).strip() for d in docs if isinstance(d, str)]
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
        raise BatError(f"only {len(docs)} distinct non-empty document{'s' if len(docs) != 1 else ''} left; a topic "
                       f"model needs at least {MIN_DOCS} (a .txt file holds one document per line; a "
                       ".csv/.jsonl/.json one per row)." + _where_they_went(stats))
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
                           f"{cfg.min_token_len} letters); is this English prose?" + _where_they_went(stats) + hint
                           ) from None
        if "max_df corresponds to" in msg or "min_df" in msg:
            raise BatError(f"min_df={cfg.min_df} and max_df={cfg.max_df} leave no words for {len(train_docs)} training "
                           "documents; lower min_df or raise max_df." + _where_they_went(stats) + hint) from None
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
    docs = [strip_format_chars(d) for d in docs]  # as build_corpus cleaned the corpus
    return sp.csr_matrix(make_vectorizer(cfg, vocabulary).transform(docs), dtype=np.float32)


def vectorize_reference(docs: list[str], corpus: Corpus, name: str = "the reference") -> sp.csr_matrix:
    """Count matrix of other texts (an outside NPMI reference) over the corpus's vocabulary: one row per document
    read, those without a vocabulary word included (the CLI and the app count the same rows, so they give the same
    NPMI). A BatError when there is no document or no word in common: such a reference cannot score a topic."""
    counts = vectorize(docs, corpus.config, corpus.vocab)
    if counts.shape[0] == 0:
        raise BatError(f"{name} holds no document (no line or row with text)")
    if counts.nnz == 0:
        raise BatError(f"{name} shares no word with the vocabulary of {corpus.name}, so it cannot score its topics; "
                       "give texts from the same domain (in the same language)")
    return counts
