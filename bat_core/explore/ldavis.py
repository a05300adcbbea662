"""pyLDAvis, fully offline: the d3 and LDAvis JavaScript/CSS that ship in the pyLDAvis wheel are inlined.

pyLDAvis's own HTML loads d3 and LDAvis from CDNs (see docs/stack-notes.md section 4); here nothing is fetched at
render time. ``n_jobs=1`` (joblib workers cost more than they save on small inputs), PCoA for the map, and an epsilon on
the topic-word matrix (exact zeros make pyLDAvis take log 0).
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

_EPS = 1e-12


def prepare(topic_term: np.ndarray, doc_topic: np.ndarray, doc_lengths: np.ndarray, vocab: list[str],
            term_frequency: np.ndarray, **kw: Any):
    """``pyLDAvis.prepare`` with safe inputs: float64 numpy arrays, rows renormalised, no exact zeros.

    Topics keep their order (``sort_topics=False``), so LDAvis's topic 1 is the model's first topic.
    """
    import pyLDAvis

    kw.setdefault("n_jobs", 1)
    kw.setdefault("mds", "pcoa")
    kw.setdefault("sort_topics", False)
    tt = np.asarray(topic_term, dtype=np.float64) + _EPS
    tt /= tt.sum(axis=1, keepdims=True)
    dt = np.asarray(doc_topic, dtype=np.float64) + _EPS
    dt /= dt.sum(axis=1, keepdims=True)
    lengths = np.asarray(doc_lengths, dtype=np.float64).ravel()
    tf = np.asarray(term_frequency, dtype=np.float64).ravel()
    if tt.shape[1] != len(vocab) or tf.shape[0] != len(vocab):
        raise ValueError(f"vocabulary size mismatch: topic-word {tt.shape[1]}, term frequency {tf.shape[0]}, "
                         f"vocab {len(vocab)}")
    if dt.shape[0] != lengths.shape[0] or dt.shape[1] != tt.shape[0]:
        raise ValueError(f"shape mismatch: doc-topic {dt.shape}, {lengths.shape[0]} doc lengths, {tt.shape[0]} topics")
    keep = lengths > 0  # documents with no in-vocabulary word carry no information for LDAvis
    tf = np.maximum(tf, _EPS)  # a word never seen would give log 0 in the relevance score
    return pyLDAvis.prepare(tt, dt[keep], lengths[keep], list(vocab), tf, **kw)


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str, str]:
    import pyLDAvis.urls as urls

    read = lambda p: Path(p).read_text(encoding="utf-8")  # noqa: E731
    return read(urls.D3_LOCAL), read(urls.LDAVIS_LOCAL), read(urls.LDAVIS_CSS_LOCAL)


def to_offline_html(prepared, visid: str = "ldavis_el", title: str = "") -> str:
    """A self-contained HTML page (≈ 350 kB) that renders LDAvis with no network access."""
    d3, js, css = _assets()
    data = prepared.to_json().replace("</", "<\\/")
    head = f"<h3 style='font-family:sans-serif;margin:4px 8px'>{html.escape(title)}</h3>" if title else ""
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<style>{css}</style><script>{d3}</script><script>{js}</script></head>"
            f"<body style='margin:0;background:white'>{head}<div id='{visid}' style='background-color:white;'></div>"
            f"<script>new LDAvis('#{visid}', {data});</script></body></html>")


def run_html(run, counts, vocab: list[str], title: str = "", visid: str = "ldavis_el") -> str:
    """Offline LDAvis page for a trained run over the corpus it was trained on.

    ``run`` supplies ``topic_word()`` (K×V) and ``theta`` (N×K, corpus row order); ``counts`` is the corpus's N×V
    count matrix (doc lengths and term frequencies come from it).
    """
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    tf = np.asarray(counts.sum(axis=0)).ravel()
    prepared = prepare(run.topic_word(), run.theta, lengths, vocab, tf)
    return to_offline_html(prepared, visid=visid, title=title)


LDAVIS_WIDTH_PX = 1210  # the width LDAvis draws its map, its term bars and their margins in
MIN_ZOOM = 0.4  # below it the words cannot be read: a narrower frame scrolls instead


def with_zoom(page: str, zoom: float) -> str:
    """The same page drawn at ``zoom`` (CSS zoom on the body): two LDAvis views fit side by side. In a frame narrower
    than the view at that zoom (side by side on a laptop screen, each frame is about 580 px wide; 0.55 × 1210 px is
    665), a script shrinks the zoom until the view fits, so the term bars and the relevance slider are not cut off;
    not below ``MIN_ZOOM``, where a frame too narrow for it scrolls.

    Applied to a cached page, so one cached HTML per run serves every layout."""
    if zoom == 1:
        return page
    z = f"{float(zoom):g}"
    fit = (f"<script>(function(){{function fit(){{document.body.style.zoom=Math.max({MIN_ZOOM:g},Math.min({z},"
           f"window.innerWidth/{LDAVIS_WIDTH_PX}));}}fit();window.addEventListener('resize',fit);}})();</script>")
    page = page.replace("<body style='margin:0;background:white'>",
                        f"<body style='margin:0;background:white;zoom:{z}'>", 1)
    head, sep, tail = page.rpartition("</body>")
    return head + fit + sep + tail
