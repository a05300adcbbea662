"""Offline pyLDAvis: the page embeds d3 and LDAvis and references no URL."""

import re
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from bat_core.explore import ldavis


def _fake_run(k=4, v=50, n=30, seed=0):
    rng = np.random.default_rng(seed)
    tw = rng.dirichlet(np.ones(v) * 0.3, size=k)
    tw[0, 0] = 0.0  # an exact zero must not break the log
    tw[0] /= tw[0].sum()
    theta = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
    dense = rng.poisson(1.0, size=(n, v)).astype(np.float32)
    dense[0, :] = 0  # a document with no words
    counts = sp.csr_matrix(dense)
    return SimpleNamespace(topic_word=lambda: tw, theta=theta), counts, [f"w{i}" for i in range(v)]


def test_offline_html_has_no_urls():
    run, counts, vocab = _fake_run()
    html = ldavis.run_html(run, counts, vocab, title="Baseline <λ=0>")
    assert "new LDAvis" in html
    assert 'src="http' not in html and "src='http" not in html
    assert not re.search(r"<link[^>]+href=.https?:", html)
    assert "Baseline &lt;λ=0&gt;" in html
    assert "</script>" in html and html.count("<script>") == 3


def test_prepare_keeps_topic_order():
    run, counts, vocab = _fake_run(k=3)
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    tf = np.asarray(counts.sum(axis=0)).ravel()
    prep = ldavis.prepare(run.topic_word(), run.theta, lengths, vocab, tf)
    assert list(prep.topic_order) == [1, 2, 3]


def test_zoom_for_side_by_side():
    run, counts, vocab = _fake_run()
    page = ldavis.run_html(run, counts, vocab)
    assert ldavis.with_zoom(page, 1) == page
    small = ldavis.with_zoom(page, 0.6)
    assert "zoom:0.6" in small and small.count("zoom:0.6") == 1
    # in a frame narrower than the view at that zoom, the page shrinks itself to fit (never above the zoom asked)
    assert f"Math.max(0.4,Math.min(0.6,window.innerWidth/{ldavis.LDAVIS_WIDTH_PX}))" in small
    assert small.index("window.innerWidth") > small.index("new LDAvis(")  # after the view, in the page's body
