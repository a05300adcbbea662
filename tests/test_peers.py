"""benchmarks/peers.py without the bench venv: LDA (gensim is a runtime dependency), scoring, reporting, and the
'unavailable' row for a peer whose package is missing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from bat_core.config import CorpusConfig
from bat_core.data.corpus import build_corpus

ROOT = Path(__file__).resolve().parents[1]


def _load_peers():
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "benchmarks" / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


peers = _load_peers()


_THEMES = ("rocket orbit nasa launch satellite moon shuttle planet mission astronaut".split(),
           "football match goal team player coach league season stadium referee".split(),
           "recipe cheese bread butter oven flour sugar dinner kitchen tomato".split())


def _small_corpus():
    rng = np.random.default_rng(0)
    docs = []
    for i in range(90):
        words = _THEMES[i % 3]
        docs.append(" ".join(rng.choice(words, size=25)) + f" filler{i % 7}word")
    return build_corpus(docs, CorpusConfig(min_df=2, remove_boilerplate=False), name="toy")


@pytest.fixture(scope="module")
def corpus():
    return _small_corpus()


def test_evaluate_topics_matches_metrics(corpus):
    from bat_core.evaluation.metrics import npmi_per_topic, topic_uniqueness

    top = np.arange(20).reshape(2, 10) % corpus.vocab_size
    m = peers.evaluate_topics(top, corpus)
    assert m["test_npmi"] == pytest.approx(float(npmi_per_topic(top, corpus.split_counts("test")).mean()))
    assert m["tu"] == pytest.approx(topic_uniqueness(top))
    for key in ("dev_npmi", "wiki_npmi", "test_npmi_median", "test_npmi_wo_artefacts"):
        assert key in m
    assert len(m["test_npmi_per_topic"]) == 2


def test_lda_peer_runs_and_separates_themes(corpus):
    row = peers.run_peer("lda", corpus, 3, seed=0)
    assert row["status"] == "ok", row
    assert row["n_topics_returned"] == 3 and len(row["topics"]) == 3
    assert all(len(t) == 10 for t in row["topics"])
    assert 0 < row["tu"] <= 1 and -1 <= row["test_npmi"] <= 1
    # each theme's ten words dominate one topic: every topic's top words come mostly from a single theme
    themes = [set(_THEMES[t]) for t in range(3)]
    best = sorted(max(range(3), key=lambda t: len(set(words) & themes[t])) for words in row["topics"])
    assert best == [0, 1, 2], row["topics"]
    assert all(max(len(set(words) & th) for th in themes) >= 7 for words in row["topics"]), row["topics"]
    assert row["wall_time_s"] >= 0
    # deterministic for a seed
    again = peers.run_peer("lda", corpus, 3, seed=0)
    assert again["topics"] == row["topics"]


def test_missing_package_gives_unavailable_row(corpus):
    if importlib.util.find_spec("bertopic") is not None:
        pytest.skip("bertopic is installed here")
    row = peers.run_peer("bertopic", corpus, 3, seed=0)
    assert row["status"] == "unavailable" and "bertopic" in row["why"]
    assert "test_npmi" not in row  # never a made-up number


def test_unknown_peer_is_an_error(corpus):
    with pytest.raises(ValueError):
        peers.run_peer("nope", corpus, 3, seed=0)


def test_summary_and_markdown(tmp_path, corpus):
    rows = [peers.run_peer("lda", corpus, 3, seed=s) for s in (0, 1)]
    rows.append({"peer": "ctm", "seed": 0, "n_topics": 3, "status": "unavailable", "why": "not installed"})
    result = {"corpus": {"name": "toy", "hash": corpus.hash, "vocab_size": corpus.vocab_size, "train_docs": 1,
                         "dev_docs": 1, "test_docs": 1},
              "n_topics": 3, "environment": {"summary": "test"}, "runs": rows}
    out = tmp_path / "peers-toy.json"
    peers.write_results(result, out)
    data = json.loads(out.read_text())
    assert data["summary"]["lda"]["seeds_ok"] == 2
    assert data["summary"]["ctm"]["seeds_ok"] == 0 and data["summary"]["ctm"]["status"] == "unavailable"
    md = out.with_suffix(".md").read_text()
    assert "| lda | 2 |" in md and "unavailable: not installed" in md
