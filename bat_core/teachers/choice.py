"""The teacher choice in plain words: which teacher, why, what the others scored, and whether the transformer
added anything on this corpus. Pure text from the facts a teacher stores in its meta, so that a stored teacher or run
is described with today's wording (:func:`choice_line`), not the wording of the day it was built."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

# Below this median length (words in the vocabulary per training document) dev perplexity cannot speak for the
# transformer: a document's own words pick its lexical neighbours, so the lexical teacher all but reconstructs a short
# document (news leads of 12 words: perplexity 78-84 vs the transformer's 339-401), while the transformer teacher gave
# the more coherent topics (tuning.md, "Short documents"). Measured: leads 12 words; every long corpus 57-147.
SHORT_DOC_TOKENS = 25
# What was measured there (tuning.md, "Short documents"), said the same way before training and after it.
SHORT_DOC_EVIDENCE = ("On news leads (27-30 words, 12 in the vocabulary) the transformer teacher's topics were 8-12% "
                      "more coherent against the full articles than the lexical teacher's when both used the same "
                      "background correction γ (4 or 5 of 5 seeds; with each teacher's own γ +1.5% and +11%), and "
                      "less distinct (topic uniqueness 0.02-0.06 lower).")


# On short documents ``auto`` spreads each document's words to the words that co-occur with them in the training
# documents (teachers/wordlevel.py, kind cooc), mixed half and half with the shared-word neighbours' target. Why: a
# short document's neighbours are found from a handful of words, and the co-occurrence of its words across the corpus
# is the knowledge short-text topic models pool (the biterm and word-network models); measured below.
SHORT_DOC_SPREAD = "cooc"
SHORT_DOC_SPREAD_EVIDENCE = ("On NYT editorial sentences (5 words in the vocabulary) this spread gave topics 39% more "
                             "coherent against the whole editorials than the baseline's (5/5 seeds) with topic "
                             "uniqueness kept (−0.009), where the neighbours alone lost 9% and 0.044 "
                             "(docs/results.md, section 3d).")


def without_encoder(median_tokens: float) -> str:
    """The kind ``auto`` builds when no candidate that uses the encoder wins its screen: the shared-word neighbours,
    on short documents spread to co-occurring words (``build._fit_knn``). It needs no encoding, so a first look can
    train on it while ``auto`` still encodes (grid.Plan.early); its logits are ``auto``'s own whenever ``auto``
    chooses it, as it did on every corpus measured so far."""
    return SHORT_DOC_SPREAD if median_tokens < SHORT_DOC_TOKENS else "lexical"


def median_length(counts: Any, rows: Any = None) -> float:
    """Median number of vocabulary words per document (``rows`` of a documents × words count matrix, or all): the
    length that decides whether dev perplexity can judge the transformer (:data:`SHORT_DOC_TOKENS`)."""
    x = counts if rows is None else counts[rows]
    return float(np.median(np.asarray(x.sum(axis=1)).ravel()))


def short_documents_hint(median: float) -> str:
    """A line for the Train page when documents are short, before anything is trained ("" otherwise)."""
    if median >= SHORT_DOC_TOKENS:
        return ""
    return (f"These documents are short (median {median:.0f} words in the vocabulary). `auto` will very likely "
            f"choose neighbours by shared words here, because dev perplexity favours them on short texts, and spread "
            f"each document's words to the words that co-occur with them in the training documents. "
            f"{SHORT_DOC_SPREAD_EVIDENCE} {SHORT_DOC_EVIDENCE} Worth a comparison: train once with Neighbours by = "
            "the encoder's embeddings.")


KIND_WORDS = {"lexical": "nearest neighbours by shared words (TF-IDF)",
              "transformer": "nearest neighbours by {encoder} embeddings",
              "hybrid": "nearest neighbours by shared words and {encoder} embeddings together",
              "random": "random neighbours (the null control: no knowledge of the words)",
              "wordvec": "nearest neighbours by shared words, spread to related words by {encoder} word vectors "
                         "(among words that co-occur in the training documents)",
              "cooc": "nearest neighbours by shared words, spread to words that co-occur in the training documents",
              "wordvec-shuffled": "nearest neighbours by shared words, spread by shuffled {encoder} word vectors "
                                  "(the placebo: the same co-occurring words, the vectors given to other words)"}


def kind_words(kind: str, encoder: str = "MiniLM") -> str:
    """A teacher kind ("lexical", "transformer", "hybrid …", "random", or a word-level kind: "wordvec", "cooc",
    "wordvec-shuffled") in words."""
    words = KIND_WORDS.get(kind.split()[0] if kind else kind)
    return words.format(encoder=encoder) if words else f"{kind} neighbours"


def describe_choice(chosen: str, table: list[dict], unigram_perplexity: float,
                    median_tokens: float | None = None, encoder: str = "MiniLM") -> str:
    """The teacher choice in plain words: which teacher, why, what the others scored, and whether the transformer
    added anything on this corpus (as far as dev perplexity can tell: on short documents it cannot, and the line
    says so instead of claiming that the transformer adds nothing)."""
    ppl = {row["teacher"]: row["dev_perplexity"] for row in table}
    spread = chosen == SHORT_DOC_SPREAD and "lexical" in ppl  # auto on short documents: lexical neighbours, spread
    neighbours = "lexical" if spread else chosen
    others = ", ".join(f"{n} {v:,.0f}" for n, v in sorted(ppl.items(), key=lambda kv: kv[1])
                       if n not in (chosen, neighbours))
    why = ("chosen because they predict the held-out dev documents best" if others else
           "as set (the only candidate)")
    line = (f"Teacher: {kind_words(neighbours, encoder)}, {why} "
            f"(dev perplexity {ppl[neighbours]:,.0f}; " + (f"{others}; " if others else "")
            + f"word frequencies alone {unigram_perplexity:,.0f}).")
    if ppl[neighbours] >= unigram_perplexity:
        return line + (" No teacher predicts held-out documents better than word frequencies alone: distillation "
                       "is unlikely to help on this corpus.")
    if spread:
        line += (f" These documents are short (median {median_tokens or 0:.0f} words in the vocabulary), so each "
                 "document's words are also spread to the words that co-occur with them in the training documents "
                 f"(half of the target; dev perplexity with the spread {ppl[chosen]:,.0f}). "
                 f"{SHORT_DOC_SPREAD_EVIDENCE}")
    if "lexical" in ppl and "transformer" in ppl:
        chosen = neighbours
        if chosen == "lexical" and median_tokens is not None and median_tokens < SHORT_DOC_TOKENS:
            line += ((" On short documents" if spread else
                      f" These documents are short (median {median_tokens:.0f} words in the vocabulary), and on short "
                      "documents") + " perplexity favours shared words by construction, so it cannot tell whether the "
                     f"transformer helps. {SHORT_DOC_EVIDENCE} Try it and compare: neighbours by the encoder's "
                     "embeddings (CLI: --teacher transformer).")
        elif chosen == "lexical":
            line += (" On this corpus the transformer adds nothing over shared words: its neighbours, alone or mixed "
                     "with the lexical ones, predict held-out documents worse.")
        elif chosen.startswith("hybrid"):
            line += " The transformer helps here only mixed with shared words."
        else:
            line += " The transformer's neighbours beat shared words on this corpus."
    return line


def choice_line(meta: Mapping[str, Any]) -> str:
    """The teacher line for a stored teacher's (or run's) meta: rebuilt from its candidates' scores where it has
    them, else the line it stored (older teachers), else ""."""
    try:
        return describe_choice(str(meta["teacher_kind"]), list(meta["candidates"]),
                               float(meta["unigram_dev_perplexity"]), meta.get("median_tokens"),
                               encoder_name(meta.get("model")))
    except (KeyError, TypeError, ValueError):
        return str(meta.get("choice") or "")


def encoder_name(model: Any) -> str:
    """A readable name for the encoder: "MiniLM" for the bundled one, else the model id's or folder's last part."""
    name = Path(str(model or "the encoder")).name
    return "MiniLM" if name.lower() in ("minilm", "all-minilm-l6-v2") else name


def teacher_name(meta: Mapping[str, Any] | None) -> str:
    """What produced the distillation target, in words a user can check against what ran ("" without a teacher).

    Named by what knows the words: "nearest neighbours by shared words (TF-IDF)" for the lexical kind, "nearest
    neighbours by MiniLM embeddings" for the transformer kind, "a bag-of-words head on frozen MiniLM embeddings" or
    "fine-tuned BERT with a bag-of-words head" for the paper's modes. An encoder is named only when one ran.
    """
    if not meta:
        return ""
    kind = str(meta.get("teacher_kind") or "")
    encoder = encoder_name(meta.get("model"))
    if kind and (meta.get("head") == "knn" or kind != "transformer"):
        return kind_words(kind, encoder)
    mode = meta.get("mode")
    if mode == "full":
        return f"fine-tuned {encoder} with a bag-of-words head (the paper's teacher)"
    if mode == "top-n":
        return f"{encoder} with its top layers fine-tuned and a bag-of-words head"
    return f"a bag-of-words head on frozen {encoder} embeddings"
